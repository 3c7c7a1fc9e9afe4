// Command imdsregion prints the region the AWS SDK for Go v2 finds in the
// instance metadata service, as a program on an EC2 instance does when no
// region is configured. TestLinuxInstanceMetadata runs it inside an
// instance.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/aws/aws-sdk-go-v2/config"
)

func main() {
	cfg, err := config.LoadDefaultConfig(context.Background(), config.WithEC2IMDSRegion())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(cfg.Region)
}

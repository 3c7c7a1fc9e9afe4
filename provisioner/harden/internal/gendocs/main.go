// Command gendocs writes docs/provisioners/harden.mdx from the embedded
// profiles and config.go (run by go generate in provisioner/harden).
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/immutable-infra/packer-plugin-phoenix/provisioner/harden"
)

func main() {
	out := flag.String("o", "", "output file")
	config := flag.String("config", "config.go", "the Config source")
	flag.Parse()
	if err := run(*config, *out); err != nil {
		fmt.Fprintln(os.Stderr, "gendocs:", err)
		os.Exit(1)
	}
}

func run(config, out string) error {
	src, err := os.ReadFile(config)
	if err != nil {
		return err
	}
	doc, err := harden.GenerateDocs(src)
	if err != nil {
		return err
	}
	if out == "" {
		_, err = os.Stdout.Write(doc)
		return err
	}
	return os.WriteFile(out, doc, 0o644)
}

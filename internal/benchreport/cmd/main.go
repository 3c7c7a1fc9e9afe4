// Command cmd prints the side-by-side benchmark table that `make bench`
// collected: go run ./internal/benchreport/cmd [-markdown] [results.json].
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/immutable-infra/packer-plugin-phoenix/internal/benchreport"
)

func main() {
	markdown := flag.Bool("markdown", false, "print a Markdown table")
	flag.Parse()
	if err := run(*markdown, flag.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "benchreport:", err)
		os.Exit(1)
	}
}

func run(markdown bool, args []string) error {
	var path string
	switch len(args) {
	case 0:
		p, err := benchreport.Path()
		if err != nil {
			return err
		}
		path = p
	case 1:
		path = args[0]
	default:
		return fmt.Errorf("at most one results file, got %d", len(args))
	}
	rows, err := benchreport.Read(path)
	if err != nil {
		return err
	}
	if len(rows) == 0 {
		return fmt.Errorf("no benchmark results in %s", path)
	}
	if markdown {
		return benchreport.PrintMarkdown(os.Stdout, rows)
	}
	fmt.Printf("\nSide by side (ratio = phoenix / baseline), from %s:\n", path)
	return benchreport.Print(os.Stdout, rows)
}

package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// flagValueKinds say what a flag of each pflag type takes, for messages
// that name the flag instead of the Go parser that refused its value.
var flagValueKinds = map[string]string{
	"int":      "a whole number",
	"intSlice": "a list of whole numbers, e.g. 20,50,100",
	"duration": `a duration, e.g. "10s" or "5m"`,
	"float64":  "a number",
	"bool":     "true or false",
}

// flagError turns a flag parsing error into a refusal that names the
// flag and what it takes.
func flagError(_ *cobra.Command, err error) error {
	var iv *pflag.InvalidValueError
	if errors.As(err, &iv) {
		f := iv.GetFlag()
		if kind, ok := flagValueKinds[f.Value.Type()]; ok {
			return refused("--%s %q is not %s", f.Name, iv.GetValue(), kind)
		}
	}
	return refusedError{err}
}

// refuseBadArguments makes every positional-argument error of c's
// subcommands (and an unknown subcommand of c itself) a refusal that
// names the argument and shows the usage.
func refuseBadArguments(c *cobra.Command) {
	c.Args = cobra.ArbitraryArgs
	if c.SuggestionsMinimumDistance <= 0 {
		c.SuggestionsMinimumDistance = 2 // cobra's own default
	}
	c.RunE = func(cmd *cobra.Command, args []string) error {
		if len(args) == 0 {
			return cmd.Help()
		}
		msg := fmt.Sprintf("unknown command %q", args[0])
		if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
			msg += fmt.Sprintf(" (did you mean %s?)", strings.Join(s, " or "))
		}
		return refused("%s: %s; see %s --help", cmd.CommandPath(), msg, cmd.CommandPath())
	}
	for _, sub := range c.Commands() {
		valid := sub.Args
		if valid == nil {
			continue
		}
		sub.Args = func(cmd *cobra.Command, args []string) error {
			if valid(cmd, args) == nil {
				return nil
			}
			// The first argument that makes the list invalid is the
			// unexpected one.
			extra := args[len(args)-1]
			for k := 1; k <= len(args); k++ {
				if valid(cmd, args[:k]) != nil {
					extra = args[k-1]
					break
				}
			}
			return refused("%s: unexpected argument %q (usage: %s)", cmd.CommandPath(), extra, cmd.UseLine())
		}
	}
}

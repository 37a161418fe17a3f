package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
)

// commandNames are the commands run knows, in the order of the usage.
var commandNames = []string{"source", "ingest", "search", "purge", "reindex", "index", "quarantine", "serve", "confirm", "reject", "user",
	"policy", "rights", "audit", "export", "backup", "restore", "setup", "faces", "compare", "eval", "bench", "version", "help", "completion"}

// help prints the usage and flags of the command args names (a command,
// or a command and its subcommand) to stdout, by running it with -h: every
// command parses its flags before it does anything.
func help(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if !slices.Contains(commandNames, args[0]) {
		fmt.Fprintf(stderr, "gabarit help: no command %q (see gabarit help)\n", args[0])
		return exitError{2}
	}
	var out bytes.Buffer
	err := run(ctx, append(slices.Clone(args), "-h"), &out, &out)
	var ee exitError
	if err != nil && !errors.Is(err, flag.ErrHelp) && !(errors.As(err, &ee) && ee.code == 2) {
		return err
	}
	_, werr := stdout.Write(out.Bytes())
	return werr
}

// usageLine matches the usage a command with subcommands prints.
var usageLine = regexp.MustCompile(`usage: gabarit \S+ (\S+)`)

// withSubcommands are the commands that take a subcommand.
var withSubcommands = []string{"source", "index", "quarantine", "user", "policy", "rights", "audit", "export", "eval", "bench"}

// subcommandsOf returns the subcommands of command cmd, read from the
// usage it prints when asked for help, or none. Only the commands of
// withSubcommands are run (with -h, which does nothing else): any other
// may do its work without arguments.
func subcommandsOf(cmd string) []string {
	if !slices.Contains(withSubcommands, cmd) {
		return nil
	}
	var out bytes.Buffer
	_ = run(context.Background(), []string{cmd, "-h"}, io.Discard, &out)
	m := usageLine.FindStringSubmatch(out.String())
	if m == nil || !strings.Contains(m[1], "|") {
		return nil
	}
	return strings.Split(m[1], "|")
}

// completion prints the bash or zsh completion script: commands,
// subcommands, and each command's flags (read from gabarit help when a
// word starting with - is completed).
func completion(args []string, stdout, stderr io.Writer) error {
	if len(args) != 1 || args[0] != "bash" && args[0] != "zsh" {
		fmt.Fprintln(stderr, "usage: gabarit completion bash|zsh   (then: source <(gabarit completion bash))")
		return exitError{2}
	}
	var cases strings.Builder
	for _, c := range commandNames {
		if subs := subcommandsOf(c); len(subs) > 0 {
			fmt.Fprintf(&cases, "    %s) subs=%q ;;\n", c, strings.Join(subs, " "))
		}
	}
	if args[0] == "zsh" {
		fmt.Fprintln(stdout, "autoload -U +X bashcompinit && bashcompinit")
	}
	_, err := fmt.Fprintf(stdout, `_gabarit() {
  local cur=${COMP_WORDS[COMP_CWORD]} cmd=${COMP_WORDS[1]} sub="" subs=""
  if [[ $COMP_CWORD -eq 1 ]]; then
    COMPREPLY=($(compgen -W %q -- "$cur"))
    return
  fi
  case "$cmd" in
%s  esac
  if [[ $COMP_CWORD -gt 2 && -n $subs ]]; then sub=${COMP_WORDS[2]}; fi
  if [[ $cur == -* ]]; then
    local flags
    flags=$(gabarit help "$cmd" $sub 2>/dev/null | sed -n 's/^  -\([A-Za-z0-9-]*\).*/--\1/p')
    COMPREPLY=($(compgen -W "$flags" -- "$cur"))
    return
  fi
  if [[ $COMP_CWORD -eq 2 && -n $subs ]]; then
    COMPREPLY=($(compgen -W "$subs" -- "$cur"))
    return
  fi
  COMPREPLY=($(compgen -f -- "$cur"))
}
complete -o filenames -F _gabarit gabarit
`, strings.Join(commandNames, " "), cases.String())
	return err
}

package linuxrt

import (
	"encoding/base64"
	"fmt"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// #cloud-config user data, as cloud-init runs it on an EC2 instance's first
// boot: the modules images and templates use most, in cloud-init's order
// (write_files and users in its init stage, packages and runcmd in its
// final stage). The instance init turns the document into one shell script
// and runs it like a "#!" script: once per instance, output on the console.
//
// https://cloudinit.readthedocs.io/en/latest/reference/modules.html
// (write_files, users, packages, runcmd)
// https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/user-data.html
// (user data runs once, on the first boot, as root)
//
// Other keys are reported on the console and ignored, as cloud-init does
// with keys no module handles.

const cloudConfigHeader = "#cloud-config"

var supportedCloudConfigKeys = map[string]bool{"write_files": true, "users": true, "packages": true, "runcmd": true}

// cloudConfigScript renders a #cloud-config document as a POSIX sh script.
func cloudConfigScript(doc []byte) (string, error) {
	v, err := parseYAMLSubset(string(doc))
	if err != nil {
		return "", fmt.Errorf("#cloud-config: %w", err)
	}
	top, ok := v.(map[string]any)
	if !ok {
		if v == nil {
			top = map[string]any{}
		} else {
			return "", fmt.Errorf("#cloud-config: the document is not a mapping")
		}
	}
	var b strings.Builder
	b.WriteString("#!/bin/sh\n# Written by the phoenix instance init from #cloud-config user data.\nset -u\nrc=0\n")
	var keys []string
	for k := range top {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !supportedCloudConfigKeys[k] {
			fmt.Fprintf(&b, "echo %s\n", shQuote("cloud-init: key "+k+" is not handled here; ignored"))
		}
	}
	writeFiles, deferred, err := cloudWriteFiles(top["write_files"])
	if err != nil {
		return "", err
	}
	b.WriteString(writeFiles)
	users, err := cloudUsers(top["users"])
	if err != nil {
		return "", err
	}
	b.WriteString(users)
	b.WriteString(deferred)
	pkgs, err := stringList(top["packages"], "packages")
	if err != nil {
		return "", err
	}
	if len(pkgs) > 0 {
		q := shQuoteAll(pkgs)
		fmt.Fprintf(&b, "echo %s\n", shQuote("cloud-init: packages: "+strings.Join(pkgs, " ")))
		fmt.Fprintf(&b, "missing=\nfor p in %s; do dpkg-query -W -f='${Status}' \"$p\" 2>/dev/null | grep -q 'ok installed' || missing=\"$missing $p\"; done\n", q)
		b.WriteString("if [ -n \"$missing\" ]; then\n\texport DEBIAN_FRONTEND=noninteractive\n\tapt-get -q update && apt-get -q install -y $missing || { echo \"cloud-init: packages:$missing failed\"; rc=1; }\nfi\n")
	}
	cmds, err := cloudRunCmd(top["runcmd"])
	if err != nil {
		return "", err
	}
	if len(cmds) > 0 {
		b.WriteString("echo 'cloud-init: runcmd'\n(\n")
		for _, c := range cmds {
			b.WriteString(c + "\n")
		}
		b.WriteString(") || rc=$?\n")
	}
	b.WriteString("exit $rc\n")
	return b.String(), nil
}

func cloudWriteFiles(v any) (now, deferred string, err error) {
	if v == nil {
		return "", "", nil
	}
	list, ok := v.([]any)
	if !ok {
		return "", "", fmt.Errorf("#cloud-config: write_files must be a list")
	}
	var b, d strings.Builder
	for i, it := range list {
		m, ok := it.(map[string]any)
		if !ok {
			return "", "", fmt.Errorf("#cloud-config: write_files[%d] must be a mapping", i)
		}
		p, _ := m["path"].(string)
		if !path.IsAbs(p) {
			return "", "", fmt.Errorf("#cloud-config: write_files[%d].path must be an absolute path", i)
		}
		content, _ := m["content"].(string)
		switch enc, _ := m["encoding"].(string); enc {
		case "", "text/plain":
		case "b64", "base64":
			data, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(content), ""))
			if err != nil {
				return "", "", fmt.Errorf("#cloud-config: write_files[%d].content is not base64: %w", i, err)
			}
			content = string(data)
		default:
			return "", "", fmt.Errorf("#cloud-config: write_files[%d].encoding %q is not supported (b64, base64, text/plain)", i, enc)
		}
		perm := "0644"
		if s, ok := m["permissions"].(string); ok && s != "" {
			if _, err := strconv.ParseUint(s, 8, 32); err != nil {
				return "", "", fmt.Errorf("#cloud-config: write_files[%d].permissions %q is not an octal mode", i, s)
			}
			perm = s
		}
		owner := "root:root"
		if s, ok := m["owner"].(string); ok && s != "" {
			owner = s
		}
		redir := ">"
		if s, _ := m["append"].(string); s == "true" {
			redir = ">>"
		}
		w := &b
		if s, _ := m["defer"].(string); s == "true" {
			w = &d
		}
		enc := base64.StdEncoding.EncodeToString([]byte(content))
		fmt.Fprintf(w, "echo %s\nmkdir -p %s && printf '%%s' %s | base64 -d %s %s && chmod %s %s && chown %s %s || rc=1\n",
			shQuote("cloud-init: write_files: "+p), shQuote(path.Dir(p)), shQuote(enc), redir, shQuote(p), perm, shQuote(p), shQuote(owner), shQuote(p))
	}
	return b.String(), d.String(), nil
}

var userNamePattern = regexp.MustCompile(`^[a-z_][a-z0-9_-]{0,31}$`)

func cloudUsers(v any) (string, error) {
	if v == nil {
		return "", nil
	}
	list, ok := v.([]any)
	if !ok {
		return "", fmt.Errorf("#cloud-config: users must be a list")
	}
	var b strings.Builder
	for i, it := range list {
		if s, ok := it.(string); ok {
			if s == "default" {
				continue // the image's default user (admin) exists already
			}
			it = map[string]any{"name": s}
		}
		m, ok := it.(map[string]any)
		if !ok {
			return "", fmt.Errorf("#cloud-config: users[%d] must be a mapping or \"default\"", i)
		}
		name, _ := m["name"].(string)
		if !userNamePattern.MatchString(name) {
			return "", fmt.Errorf("#cloud-config: users[%d].name %q is not a valid user name", i, name)
		}
		args := []string{"useradd", "--create-home"}
		if s, ok := m["shell"].(string); ok && s != "" {
			args = append(args, "--shell", s)
		}
		if s, ok := m["gecos"].(string); ok && s != "" {
			args = append(args, "--comment", s)
		}
		groups, err := stringList(m["groups"], "users[].groups")
		if err != nil {
			return "", err
		}
		if len(groups) == 1 && strings.Contains(groups[0], ",") {
			groups = strings.Split(strings.ReplaceAll(groups[0], " ", ""), ",")
		}
		fmt.Fprintf(&b, "echo %s\n", shQuote("cloud-init: users: "+name))
		for _, g := range groups {
			fmt.Fprintf(&b, "getent group %s >/dev/null || groupadd %s || rc=1\n", shQuote(g), shQuote(g))
		}
		if len(groups) > 0 {
			args = append(args, "--groups", strings.Join(groups, ","))
		}
		args = append(args, name)
		fmt.Fprintf(&b, "getent passwd %s >/dev/null || %s || rc=1\n", shQuote(name), shQuoteAll(args))
		sudo, err := stringList(m["sudo"], "users[].sudo")
		if err != nil {
			return "", err
		}
		if len(sudo) > 0 && sudo[0] != "false" {
			var lines []string
			for _, s := range sudo {
				lines = append(lines, name+" "+s)
			}
			f := "/etc/sudoers.d/90-cloud-init-users-" + name
			fmt.Fprintf(&b, "printf '%%s\\n' %s > %s && chmod 0440 %s || rc=1\n", shQuoteAll(lines), shQuote(f), shQuote(f))
		}
		keys, err := stringList(m["ssh_authorized_keys"], "users[].ssh_authorized_keys")
		if err != nil {
			return "", err
		}
		if len(keys) > 0 {
			fmt.Fprintf(&b, "h=$(getent passwd %s | cut -d: -f6) && mkdir -p \"$h/.ssh\" && printf '%%s\\n' %s >> \"$h/.ssh/authorized_keys\" && chmod 700 \"$h/.ssh\" && chmod 600 \"$h/.ssh/authorized_keys\" && chown -R %s: \"$h/.ssh\" || rc=1\n",
				shQuote(name), shQuoteAll(keys), shQuote(name))
		}
	}
	return b.String(), nil
}

// cloudRunCmd renders runcmd: a string runs as a shell line, a list as a
// command with its arguments quoted, as cloud-init's runcmd module does.
func cloudRunCmd(v any) ([]string, error) {
	if v == nil {
		return nil, nil
	}
	list, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("#cloud-config: runcmd must be a list")
	}
	var out []string
	for i, it := range list {
		switch x := it.(type) {
		case string:
			out = append(out, x)
		case []any:
			args, err := stringList(x, "runcmd")
			if err != nil {
				return nil, err
			}
			out = append(out, shQuoteAll(args))
		default:
			return nil, fmt.Errorf("#cloud-config: runcmd[%d] must be a string or a list", i)
		}
	}
	return out, nil
}

// stringList accepts a list of scalars, or one scalar as a list of one.
func stringList(v any, what string) ([]string, error) {
	switch x := v.(type) {
	case nil:
		return nil, nil
	case string:
		return []string{x}, nil
	case []any:
		var out []string
		for _, it := range x {
			s, ok := it.(string)
			if !ok {
				return nil, fmt.Errorf("#cloud-config: %s must be a list of strings", what)
			}
			out = append(out, s)
		}
		return out, nil
	}
	return nil, fmt.Errorf("#cloud-config: %s must be a list of strings", what)
}

func shQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

func shQuoteAll(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = shQuote(a)
	}
	return strings.Join(q, " ")
}

// parseYAMLSubset reads the YAML cloud-config documents are written in:
// block mappings and sequences, plain, quoted and block (| and >)
// scalars, and flow sequences of scalars. Every scalar is a string.
func parseYAMLSubset(doc string) (any, error) {
	var lines []yline
	for n, raw := range strings.Split(strings.ReplaceAll(doc, "\r\n", "\n"), "\n") {
		if strings.Contains(raw, "\t") && strings.TrimLeft(raw, " ") != "" && strings.HasPrefix(strings.TrimLeft(raw, " "), "\t") {
			return nil, fmt.Errorf("line %d: tabs are not allowed for indentation", n+1)
		}
		lines = append(lines, yline{n: n + 1, raw: raw})
	}
	p := &yparser{lines: lines}
	p.skipBlank()
	if p.i >= len(p.lines) {
		return nil, nil
	}
	v, err := p.block(p.indent(p.i))
	if err != nil {
		return nil, err
	}
	p.skipBlank()
	if p.i < len(p.lines) {
		return nil, fmt.Errorf("line %d: unexpected indentation", p.lines[p.i].n)
	}
	return v, nil
}

type yline struct {
	n   int
	raw string
}

type yparser struct {
	lines []yline
	i     int
}

func (p *yparser) indent(i int) int {
	return len(p.lines[i].raw) - len(strings.TrimLeft(p.lines[i].raw, " "))
}

func (p *yparser) text(i int) string { return strings.TrimSpace(stripComment(p.lines[i].raw)) }

func (p *yparser) skipBlank() {
	for p.i < len(p.lines) && (p.text(p.i) == "" || p.text(p.i) == "---") {
		p.i++
	}
}

func (p *yparser) block(ind int) (any, error) {
	p.skipBlank()
	if p.i >= len(p.lines) {
		return nil, nil
	}
	if t := p.text(p.i); t == "-" || strings.HasPrefix(t, "- ") {
		return p.sequence(ind)
	}
	return p.mapping(ind)
}

func (p *yparser) sequence(ind int) (any, error) {
	var out []any
	for {
		p.skipBlank()
		if p.i >= len(p.lines) || p.indent(p.i) != ind {
			return out, nil
		}
		t := p.text(p.i)
		if t != "-" && !strings.HasPrefix(t, "- ") {
			return out, nil
		}
		rest := strings.TrimLeft(strings.TrimPrefix(t, "-"), " ")
		if rest == "" {
			p.i++
			p.skipBlank()
			if p.i >= len(p.lines) || p.indent(p.i) <= ind {
				out = append(out, nil)
				continue
			}
			v, err := p.block(p.indent(p.i))
			if err != nil {
				return nil, err
			}
			out = append(out, v)
			continue
		}
		// "- key: value" opens a mapping whose other keys line up with key.
		raw := p.lines[p.i].raw
		col := ind + (len(strings.TrimLeft(raw, " ")) - len(strings.TrimLeft(strings.TrimPrefix(strings.TrimLeft(raw, " "), "-"), " ")))
		if isMapEntry(rest) {
			p.lines[p.i].raw = strings.Repeat(" ", col) + strings.TrimLeft(strings.TrimPrefix(strings.TrimLeft(raw, " "), "-"), " ")
			v, err := p.mapping(col)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
			continue
		}
		v, err := p.scalarOrBlock(rest, ind)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
}

var mapEntryPattern = regexp.MustCompile(`^[A-Za-z0-9_.-]+:( |$)`)

// isMapEntry reports whether a sequence item's text starts a mapping.
func isMapEntry(t string) bool { return mapEntryPattern.MatchString(t) }

func (p *yparser) mapping(ind int) (any, error) {
	out := map[string]any{}
	for {
		p.skipBlank()
		if p.i >= len(p.lines) || p.indent(p.i) != ind {
			return out, nil
		}
		t := p.text(p.i)
		k, rest, ok := strings.Cut(t, ":")
		if !ok || (rest != "" && !strings.HasPrefix(rest, " ")) {
			return nil, fmt.Errorf("line %d: expected \"key: value\"", p.lines[p.i].n)
		}
		k = unquoteKey(strings.TrimSpace(k))
		rest = strings.TrimSpace(rest)
		if rest == "" {
			p.i++
			p.skipBlank()
			if p.i < len(p.lines) && (p.indent(p.i) > ind || p.indent(p.i) == ind && strings.HasPrefix(p.text(p.i), "-")) {
				v, err := p.block(p.indent(p.i))
				if err != nil {
					return nil, err
				}
				out[k] = v
			} else {
				out[k] = nil
			}
			continue
		}
		v, err := p.scalarOrBlock(rest, ind)
		if err != nil {
			return nil, err
		}
		out[k] = v
	}
}

// scalarOrBlock reads the scalar that starts the current line (after a key
// or "- ") and moves past it and, for | and >, the block's lines.
func (p *yparser) scalarOrBlock(rest string, ind int) (any, error) {
	n := p.lines[p.i].n
	p.i++
	if rest[0] == '|' || rest[0] == '>' {
		var body []string
		blockInd := -1
		for p.i < len(p.lines) {
			raw := p.lines[p.i].raw
			if strings.TrimSpace(raw) == "" {
				body = append(body, "")
				p.i++
				continue
			}
			li := len(raw) - len(strings.TrimLeft(raw, " "))
			if li <= ind {
				break
			}
			if blockInd < 0 {
				blockInd = li
			}
			if li < blockInd {
				break
			}
			body = append(body, raw[blockInd:])
			p.i++
		}
		for len(body) > 0 && body[len(body)-1] == "" {
			body = body[:len(body)-1]
		}
		var s string
		if rest[0] == '|' {
			s = strings.Join(body, "\n")
		} else {
			s = strings.Join(body, " ")
		}
		switch {
		case strings.Contains(rest, "-"):
		case strings.Contains(rest, "+"):
			s += "\n"
		default:
			if s != "" {
				s += "\n"
			}
		}
		return s, nil
	}
	v, err := yScalar(rest)
	if err != nil {
		return nil, fmt.Errorf("line %d: %w", n, err)
	}
	return v, nil
}

func yScalar(s string) (any, error) {
	switch {
	case strings.HasPrefix(s, "["):
		if !strings.HasSuffix(s, "]") {
			return nil, fmt.Errorf("flow sequence %s is not closed on its line", s)
		}
		inner := strings.TrimSpace(s[1 : len(s)-1])
		var out []any
		if inner == "" {
			return out, nil
		}
		for _, part := range splitFlow(inner) {
			v, err := yScalar(strings.TrimSpace(part))
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	case strings.HasPrefix(s, "\""):
		u, err := strconv.Unquote(s)
		if err != nil {
			return nil, fmt.Errorf("bad double-quoted string %s", s)
		}
		return u, nil
	case strings.HasPrefix(s, "'"):
		if len(s) < 2 || !strings.HasSuffix(s, "'") {
			return nil, fmt.Errorf("bad single-quoted string %s", s)
		}
		return strings.ReplaceAll(s[1:len(s)-1], "''", "'"), nil
	}
	switch s {
	case "~", "null":
		return nil, nil
	case "True", "TRUE", "yes", "on":
		return "true", nil
	case "False", "FALSE", "no", "off":
		return "false", nil
	}
	return s, nil
}

// splitFlow splits a flow sequence's inside at commas outside quotes.
func splitFlow(s string) []string {
	var out []string
	var q byte
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case q != 0:
			if c == q {
				q = 0
			}
		case c == '"' || c == '\'':
			q = c
		case c == ',':
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

func unquoteKey(k string) string {
	if v, err := yScalar(k); err == nil {
		if s, ok := v.(string); ok {
			return s
		}
	}
	return k
}

// stripComment removes a "#" comment that is outside quotes and starts the
// line or follows a space.
func stripComment(line string) string {
	var q byte
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case q != 0:
			if c == q {
				q = 0
			}
		case c == '"' || c == '\'':
			if i == 0 || line[i-1] == ' ' || line[i-1] == '[' || line[i-1] == ',' || line[i-1] == '-' {
				q = c
			}
		case c == '#' && (i == 0 || line[i-1] == ' '):
			return line[:i]
		}
	}
	return line
}

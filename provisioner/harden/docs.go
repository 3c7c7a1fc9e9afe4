package harden

import (
	"bytes"
	_ "embed"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"reflect"
	"sort"
	"strings"
	"text/template"
)

//go:embed docs.mdx.tmpl
var docsTemplate string

// DocField is one documented setting of a config struct.
type DocField struct {
	Name, Type, Doc string
	Required        bool
}

// configFields reads the settings and their comments from config.go's
// source, the same comments packer-sdc struct-markdown would use.
func configFields(src []byte, typeName string) ([]DocField, error) {
	f, err := parser.ParseFile(token.NewFileSet(), "config.go", src, parser.ParseComments)
	if err != nil {
		return nil, err
	}
	var out []DocField
	found := false
	ast.Inspect(f, func(n ast.Node) bool {
		ts, ok := n.(*ast.TypeSpec)
		if !ok || ts.Name.Name != typeName {
			return true
		}
		st, ok := ts.Type.(*ast.StructType)
		if !ok {
			return false
		}
		found = true
		for _, fld := range st.Fields.List {
			if fld.Tag == nil || len(fld.Names) == 0 || !fld.Names[0].IsExported() {
				continue
			}
			tag := reflect.StructTag(strings.Trim(fld.Tag.Value, "`"))
			name := strings.Split(tag.Get("mapstructure"), ",")[0]
			if name == "" {
				continue
			}
			doc := strings.Join(strings.Fields(fld.Doc.Text()), " ")
			out = append(out, DocField{Name: name, Type: typeString(fld.Type), Doc: doc, Required: tag.Get("required") == "true"})
		}
		return false
	})
	if !found {
		return nil, fmt.Errorf("no struct %s in config.go", typeName)
	}
	return out, nil
}

func typeString(e ast.Expr) string {
	switch t := e.(type) {
	case *ast.Ident:
		return t.Name
	case *ast.ArrayType:
		return "[]" + typeString(t.Elt)
	case *ast.MapType:
		return "map[" + typeString(t.Key) + "]" + typeString(t.Value)
	case *ast.StarExpr:
		return typeString(t.X)
	case *ast.SelectorExpr:
		return t.Sel.Name
	}
	return "?"
}

type docProfile struct {
	Name, Summary string
	Controls      []*Control
}

// GenerateDocs renders docs/provisioners/harden.mdx from config.go's
// source and the embedded profiles, so the docs cannot drift from either.
func GenerateDocs(configSrc []byte) ([]byte, error) {
	cfg, err := configFields(configSrc, "Config")
	if err != nil {
		return nil, err
	}
	skip, err := configFields(configSrc, "Skip")
	if err != nil {
		return nil, err
	}
	var profiles []docProfile
	for _, p := range []struct{ name, summary string }{
		{"baseline", "Safe on any server; the default. Besides CIS items it holds what hardening guides widely agree on and Lynis checks (legal banners, uncommon network protocols off, SHA-crypt rounds, `pam_tmpdir`); one CIS Level 2 item, PASS_MIN_DAYS (5.4.1.2), costs nothing on servers without password logins."},
		{"cis-level1", "Everything in `baseline`, plus these CIS Level 1 Server items that can be automated at bake time, and two items beyond Level 1: auditd (CIS Level 2, 6.2.x) and process accounting (Lynis ACCT-9622); set `install_auditd = false` and `install_acct = false` to stay strictly Level 1."},
		{"cleanup", "Run with `phase = \"cleanup\"` as the last provisioner."},
	} {
		set, err := LoadProfile(p.name)
		if err != nil {
			return nil, err
		}
		var own []*Control
		for _, c := range set.Controls {
			if c.Profile == p.name {
				own = append(own, c)
			}
		}
		profiles = append(profiles, docProfile{p.name, p.summary, own})
	}
	params, err := AllParams()
	if err != nil {
		return nil, err
	}
	usedBy := map[string][]string{}
	total := 0
	for _, p := range profiles {
		total += len(p.Controls)
		for _, c := range p.Controls {
			for _, prm := range c.Params {
				usedBy[prm] = append(usedBy[prm], "`"+c.ID+"`")
			}
		}
	}
	funcs := template.FuncMap{
		"refs": func(c *Control, kind string) string {
			return strings.Join(c.References[kind], ", ")
		},
		"otherRefs": func(c *Control) string {
			var out []string
			for k, v := range c.References {
				if k != "cis" && k != "devsec" && k != "lynis" {
					out = append(out, k+": "+strings.Join(v, ", "))
				}
			}
			sort.Strings(out)
			return strings.Join(out, "; ")
		},
		"distros": func(c *Control) string {
			if len(c.Distros) == 0 {
				return "all"
			}
			return strings.Join(c.Distros, ", ")
		},
		"join":   strings.Join,
		"usedBy": func(p string) string { return strings.Join(usedBy[p], ", ") },
		"weight": func(s Severity) int { return s.Weight() },
		"cell":   func(s string) string { return strings.ReplaceAll(s, "|", `\|`) },
		"orEmpty": func(s string) string {
			if s == "" {
				return "(empty)"
			}
			return "`" + s + "`"
		},
	}
	t, err := template.New("harden.mdx").Funcs(funcs).Parse(docsTemplate)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	err = t.Execute(&b, map[string]any{
		"Config": cfg, "Skip": skip, "Profiles": profiles, "Params": params, "Total": total,
		"Severities": Severities, "Distros": Distros, "DefaultExecuteCommand": DefaultExecuteCommand,
		"ImageReport": ImageReportPath, "ImageCleanupReport": ImageCleanupReportPath,
		"Audit": map[string]any{
			"Stock": LastAudit.Stock, "Baseline": LastAudit.Baseline, "CIS": LastAudit.CISLevel1, "Note": LastAudit.Note,
			"GoalBaseline": LynisGoalBaseline, "GoalCIS": LynisGoalCISLevel1, "FloorCIS": LynisChrootFloorCISLevel1, "Reasons": LynisReasons,
		},
	})
	if err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

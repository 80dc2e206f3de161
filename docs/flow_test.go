package docs

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// flowPackages are the packages flow.md names functions of, by the name it uses for each.
var flowPackages = map[string]string{
	"smtpd":     "../smtpd",
	"verify":    "../verify",
	"lists":     "../lists",
	"store":     "../store",
	"delivery":  "../delivery",
	"digest":    "../digest",
	"imapd":     "../imapd",
	"templates": "../templates",
	"mimetree":  "../internal/mimetree",
	"listcopy":  "../internal/listcopy",
}

var flowName = regexp.MustCompile("`([a-z]+)\\.([A-Za-z_][A-Za-z0-9_]*)(?:\\.([A-Za-z_][A-Za-z0-9_]*))?`")

// TestFlowNamesExist: every function, method, type or constant flow.md names is in the code,
// so the walk-through cannot silently drift from it.
func TestFlowNamesExist(t *testing.T) {
	text := read(t, "flow.md")
	decls := map[string]map[string]bool{} // package → "Name" and "Type.Method"
	found := 0
	for _, m := range flowName.FindAllStringSubmatch(text, -1) {
		dir, ok := flowPackages[m[1]]
		if !ok {
			continue // a config key such as `smtp.max_connections`
		}
		if decls[m[1]] == nil {
			decls[m[1]] = declarations(t, dir)
		}
		name := m[2]
		if m[3] != "" {
			name += "." + m[3]
		}
		found++
		if !decls[m[1]][name] {
			t.Errorf("flow.md names %s.%s, which %s does not declare", m[1], name, dir)
		}
	}
	if found < 20 {
		t.Errorf("flow.md names only %d functions; the pattern no longer reads it", found)
	}
}

// declarations are the top-level names of the Go package in dir (tests left out): functions,
// types, constants and variables as "Name", methods (of types and interfaces) as "Type.Method".
func declarations(t *testing.T, dir string) map[string]bool {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no Go files in %s: %v", dir, err)
	}
	names := map[string]bool{}
	fset := token.NewFileSet()
	for _, path := range files {
		if strings.HasSuffix(path, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			switch d := d.(type) {
			case *ast.FuncDecl:
				if d.Recv == nil {
					names[d.Name.Name] = true
					continue
				}
				typ := d.Recv.List[0].Type
				if star, ok := typ.(*ast.StarExpr); ok {
					typ = star.X
				}
				if id, ok := typ.(*ast.Ident); ok {
					names[id.Name+"."+d.Name.Name] = true
				}
			case *ast.GenDecl:
				for _, s := range d.Specs {
					switch s := s.(type) {
					case *ast.TypeSpec:
						names[s.Name.Name] = true
						if it, ok := s.Type.(*ast.InterfaceType); ok {
							for _, m := range it.Methods.List {
								for _, n := range m.Names {
									names[s.Name.Name+"."+n.Name] = true
								}
							}
						}
					case *ast.ValueSpec:
						for _, n := range s.Names {
							names[n.Name] = true
						}
					}
				}
			}
		}
	}
	return names
}

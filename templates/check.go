package templates

import (
	"fmt"
	"reflect"
	"text/template/parse"
)

// Check reports the first value the template name reads (name.txt, and name.html when there is
// one) that data's type does not have, on every branch, taken or not: a misspelled field fails
// here, where executing the template would notice it only on the branch that reads it. Dot,
// $ and the variables of range follow the types; what comes out of a function, a map of
// interfaces or an interface is not followed.
func (s *Set) Check(name string, data any) error {
	var lookup func(string) *parse.Tree
	found := false
	if t := s.text.Lookup(name + ".txt"); t != nil {
		found = true
		lookup = func(n string) *parse.Tree {
			if t := s.text.Lookup(n); t != nil {
				return t.Tree
			}
			return nil
		}
		if err := checkTree(t.Tree, reflect.TypeOf(data), lookup); err != nil {
			return fmt.Errorf("template %s.txt: %w", name, err)
		}
	}
	if h := s.html.Lookup(name + ".html"); h != nil && h.Tree != nil {
		found = true
		lookup = func(n string) *parse.Tree {
			if t := s.html.Lookup(n); t != nil {
				return t.Tree
			}
			return nil
		}
		if err := checkTree(h.Tree, reflect.TypeOf(data), lookup); err != nil {
			return fmt.Errorf("template %s.html: %w", name, err)
		}
	}
	if !found {
		return fmt.Errorf("no template %s", name)
	}
	return nil
}

// checker walks one template's parse tree with the type of dot. A nil type is one it cannot
// know (an interface, a function's result): nothing read from it is checked.
type checker struct {
	lookup func(name string) *parse.Tree
	seen   map[string]bool // templates invoked, against endless {{template}} recursion
}

func checkTree(tree *parse.Tree, dot reflect.Type, lookup func(string) *parse.Tree) error {
	c := &checker{lookup: lookup, seen: map[string]bool{tree.Name: true}}
	return c.list(tree.Root, dot, map[string]reflect.Type{"$": dot})
}

func (c *checker) list(l *parse.ListNode, dot reflect.Type, vars map[string]reflect.Type) error {
	if l == nil {
		return nil
	}
	vars = copyVars(vars) // variables live to the end of the control structure that declares them
	for _, n := range l.Nodes {
		if err := c.node(n, dot, vars); err != nil {
			return err
		}
	}
	return nil
}

func (c *checker) node(n parse.Node, dot reflect.Type, vars map[string]reflect.Type) error {
	switch n := n.(type) {
	case *parse.ActionNode:
		_, err := c.pipe(n.Pipe, dot, vars)
		return err
	case *parse.IfNode:
		return c.branch(&n.BranchNode, dot, vars, false)
	case *parse.WithNode:
		return c.branch(&n.BranchNode, dot, vars, false)
	case *parse.RangeNode:
		return c.branch(&n.BranchNode, dot, vars, true)
	case *parse.TemplateNode:
		t := dot
		if n.Pipe != nil {
			var err error
			if t, err = c.pipe(n.Pipe, dot, vars); err != nil {
				return err
			}
		}
		if c.seen[n.Name] {
			return nil
		}
		c.seen[n.Name] = true
		tree := c.lookup(n.Name)
		if tree == nil {
			return fmt.Errorf("no template %q", n.Name)
		}
		return c.list(tree.Root, t, map[string]reflect.Type{"$": t})
	}
	return nil // text, comments, break, continue
}

// branch checks if, with and range: the pipeline, then the body with dot as it is there
// (with: the pipeline's value; range: an element), then the else part with dot unchanged.
func (c *checker) branch(b *parse.BranchNode, dot reflect.Type, vars map[string]reflect.Type, isRange bool) error {
	inner := copyVars(vars)
	var t reflect.Type
	var err error
	if isRange {
		t, err = c.pipeValue(b.Pipe, dot, inner)
	} else {
		t, err = c.pipe(b.Pipe, dot, inner)
	}
	if err != nil {
		return err
	}
	body := dot
	switch b.NodeType {
	case parse.NodeWith:
		body = t
	case parse.NodeRange:
		key, elem := rangeTypes(t)
		body = elem
		switch len(b.Pipe.Decl) {
		case 1:
			inner[b.Pipe.Decl[0].Ident[0]] = elem
		case 2:
			inner[b.Pipe.Decl[0].Ident[0]] = key
			inner[b.Pipe.Decl[1].Ident[0]] = elem
		}
	}
	if err := c.list(b.List, body, inner); err != nil {
		return err
	}
	return c.list(b.ElseList, dot, vars)
}

// pipe is the type of a pipeline's value, recording the variables it declares.
func (c *checker) pipe(p *parse.PipeNode, dot reflect.Type, vars map[string]reflect.Type) (reflect.Type, error) {
	t, err := c.pipeValue(p, dot, vars)
	if err != nil {
		return nil, err
	}
	for _, v := range p.Decl {
		vars[v.Ident[0]] = t
	}
	return t, nil
}

// pipeValue is the type of a pipeline's value: its last command's.
func (c *checker) pipeValue(p *parse.PipeNode, dot reflect.Type, vars map[string]reflect.Type) (reflect.Type, error) {
	if p == nil {
		return dot, nil
	}
	var t reflect.Type
	for _, cmd := range p.Cmds {
		var err error
		if t, err = c.command(cmd, dot, vars); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// command checks every argument of cmd and returns the type of its value: the value's when
// cmd is one, unknown when it calls a function.
func (c *checker) command(cmd *parse.CommandNode, dot reflect.Type, vars map[string]reflect.Type) (reflect.Type, error) {
	var first reflect.Type
	for i, a := range cmd.Args {
		t, err := c.arg(a, dot, vars)
		if err != nil {
			return nil, err
		}
		if i == 0 {
			first = t
		}
	}
	if len(cmd.Args) > 0 {
		if _, ok := cmd.Args[0].(*parse.IdentifierNode); ok {
			return nil, nil
		}
	}
	return first, nil
}

func (c *checker) arg(n parse.Node, dot reflect.Type, vars map[string]reflect.Type) (reflect.Type, error) {
	switch n := n.(type) {
	case *parse.DotNode:
		return dot, nil
	case *parse.FieldNode:
		return fields(dot, n.Ident)
	case *parse.VariableNode:
		t, ok := vars[n.Ident[0]]
		if !ok {
			return nil, fmt.Errorf("undefined variable %s", n.Ident[0])
		}
		return fields(t, n.Ident[1:])
	case *parse.ChainNode:
		t, err := c.arg(n.Node, dot, vars)
		if err != nil {
			return nil, err
		}
		return fields(t, n.Field)
	case *parse.PipeNode:
		return c.pipe(n, dot, vars)
	}
	return nil, nil // constants, function names
}

// fields is the type of .A.B… read from a value of type t.
func fields(t reflect.Type, names []string) (reflect.Type, error) {
	for _, name := range names {
		if t == nil {
			return nil, nil
		}
		if m, ok := t.MethodByName(name); ok {
			t = result(m.Type)
			continue
		}
		if t.Kind() != reflect.Pointer && t.Kind() != reflect.Interface {
			if m, ok := reflect.PointerTo(t).MethodByName(name); ok {
				t = result(m.Type)
				continue
			}
		}
		base := t
		if base.Kind() == reflect.Pointer {
			base = base.Elem()
		}
		switch base.Kind() {
		case reflect.Struct:
			f, ok := base.FieldByName(name)
			if !ok || !f.IsExported() {
				return nil, fmt.Errorf("%s has no field or method %s", base, name)
			}
			t = f.Type
		case reflect.Map:
			t = base.Elem()
		case reflect.Interface:
			return nil, nil
		default:
			return nil, fmt.Errorf("cannot read %s of a %s", name, base)
		}
		if t.Kind() == reflect.Interface {
			t = nil
		}
	}
	return t, nil
}

// result is the type of the value a method (its receiver first) returns, unknown when it
// returns none or more than a value and an error.
func result(m reflect.Type) reflect.Type {
	if m.NumOut() == 0 || m.Out(0).Kind() == reflect.Interface {
		return nil
	}
	return m.Out(0)
}

// rangeTypes are the types of the key (index) and element of range over a value of type t.
func rangeTypes(t reflect.Type) (key, elem reflect.Type) {
	if t == nil {
		return nil, nil
	}
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Slice, reflect.Array:
		key, elem = reflect.TypeFor[int](), t.Elem()
	case reflect.Map:
		key, elem = t.Key(), t.Elem()
	case reflect.Int:
		key, elem = t, t
	default:
		return nil, nil
	}
	if elem.Kind() == reflect.Interface {
		elem = nil
	}
	return key, elem
}

func copyVars(vars map[string]reflect.Type) map[string]reflect.Type {
	out := make(map[string]reflect.Type, len(vars)+2)
	for k, v := range vars {
		out[k] = v
	}
	return out
}

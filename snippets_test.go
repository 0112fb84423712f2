package ladder_test

import (
	"bufio"
	"fmt"
	"go/ast"
	"go/doc/comment"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestSnippetsAreExamples keeps every Go snippet in the docs compiled: each
// ```go block of a Markdown file (README.md, docs/*.md and the rest) and
// each Go code block indented in a package comment must appear, verbatim,
// inside the body of an Example function in a _test.go file, which go test
// compiles and, with an // Output: comment, runs. A snippet may be a whole
// Example body or a run of its lines; indentation, alignment and blank
// lines may differ, nothing else. A snippet that starts with a declaration
// (type, func, var, const) may instead be a run of lines of an
// example_test.go file, such as a type and its methods used by an Example.
//
// A block counts as Go when its fence says go, when it has no language and
// parses as Go, or, in a package comment, when it parses as Go or starts
// like a Go statement. JSON, shell sessions and output are not checked.
func TestSnippetsAreExamples(t *testing.T) {
	bodies, files := examples(t)
	if len(bodies) == 0 {
		t.Fatal("found no Example functions: the walk of the repository is broken")
	}
	snips := append(markdownSnippets(t), packageDocSnippets(t)...)
	readme := 0
	for _, s := range snips {
		if s.file == "README.md" {
			readme++
		}
		if s.declaration() && foundIn(s.lines, files) {
			continue
		}
		if foundIn(s.lines, bodies) {
			continue
		}
		t.Errorf("%s:%d: this Go snippet is not compiled: its %d lines are not, verbatim, in the body of any Example function.\n"+
			"\tCopy it from an Example, or write one (in an example_test.go of the package it documents, with // Output: when it can run\n"+
			"\twithout ONNX Runtime or with the models in testdata/), then make the two identical. Indentation and blank lines may differ.\n%s",
			s.file, s.line, len(s.lines), nearest(s, bodies))
	}
	if readme == 0 {
		t.Error("README.md: found no ```go block; the usage example is expected there (it is Example in example_test.go)")
	}
}

// A snippet is one Go code block of the docs.
type snippet struct {
	file  string   // relative to the module root
	line  int      // of its first line of code
	lines []string // normalised
}

var declStart = regexp.MustCompile(`^(type|func|var|const)\b`)

func (s snippet) declaration() bool { return len(s.lines) > 0 && declStart.MatchString(s.lines[0]) }

// source is a run of normalised lines that the compiler sees.
type source struct {
	name  string // file:line and what it is
	lines []string
}

// examples returns the bodies of every Example function in the module's
// _test.go files, and the whole text of every example_test.go file.
func examples(t *testing.T) (bodies, files []source) {
	t.Helper()
	walk(t, func(path string) {
		if !strings.HasSuffix(path, "_test.go") {
			return
		}
		src, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, path, src, parser.ParseComments)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		for _, d := range f.Decls {
			fn, ok := d.(*ast.FuncDecl)
			if !ok || fn.Recv != nil || fn.Body == nil || !strings.HasPrefix(fn.Name.Name, "Example") {
				continue
			}
			body := src[fset.Position(fn.Body.Lbrace).Offset+1 : fset.Position(fn.Body.Rbrace).Offset]
			bodies = append(bodies, source{
				name:  fmt.Sprintf("%s:%d %s", path, fset.Position(fn.Pos()).Line, fn.Name.Name),
				lines: normalise(string(body)),
			})
		}
		if filepath.Base(path) == "example_test.go" {
			files = append(files, source{name: path, lines: normalise(string(src))})
		}
	})
	return bodies, files
}

var fence = regexp.MustCompile("^\\s*(```+|~~~+)\\s*([^\\s`]*)")

// markdownSnippets returns the Go blocks of every Markdown file.
func markdownSnippets(t *testing.T) []snippet {
	t.Helper()
	var snips []snippet
	walk(t, func(path string) {
		if !strings.HasSuffix(path, ".md") {
			return
		}
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		var (
			open       string // the fence of the block being read, "" outside one
			lang       string
			start, n   int
			code       strings.Builder
			scan       = bufio.NewScanner(f)
			isGoFenced = func(lang, code string) bool {
				switch strings.ToLower(lang) {
				case "go", "golang":
					return true
				case "":
					return parsesAsGo(code)
				}
				return false
			}
		)
		for scan.Scan() {
			n++
			line := scan.Text()
			m := fence.FindStringSubmatch(line)
			switch {
			case open == "" && m != nil:
				open, lang, start = m[1], m[2], n+1
				code.Reset()
			case open != "" && m != nil && strings.HasPrefix(m[1], open) && m[2] == "":
				if isGoFenced(lang, code.String()) {
					snips = append(snips, snippet{file: path, line: start, lines: normalise(code.String())})
				}
				open = ""
			case open != "":
				code.WriteString(line + "\n")
			}
		}
		if err := scan.Err(); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if open != "" {
			t.Errorf("%s:%d: code block never closed", path, start-1)
		}
	})
	return snips
}

// packageDocSnippets returns the Go code blocks of every package comment
// outside _test.go files.
func packageDocSnippets(t *testing.T) []snippet {
	t.Helper()
	var snips []snippet
	walk(t, func(path string) {
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return
		}
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, path, nil, parser.ParseComments|parser.PackageClauseOnly)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if f.Doc == nil {
			return
		}
		// The comment's lines with their line numbers, to say where a block is.
		type numbered struct {
			n    int
			text string
		}
		var raw []numbered
		for _, c := range f.Doc.List {
			first := fset.Position(c.Slash).Line
			text := strings.TrimPrefix(strings.TrimPrefix(strings.TrimSuffix(c.Text, "*/"), "//"), "/*")
			for i, l := range strings.Split(text, "\n") {
				raw = append(raw, numbered{first + i, strings.TrimSpace(l)})
			}
		}
		var p comment.Parser
		next := 0
		for _, b := range p.Parse(f.Doc.Text()).Content {
			code, ok := b.(*comment.Code)
			if !ok || !(parsesAsGo(code.Text) || looksLikeGo(code.Text)) {
				continue
			}
			lines := normalise(code.Text)
			line := fset.Position(f.Doc.Pos()).Line
			for i := next; i < len(raw) && len(lines) > 0; i++ {
				if strings.Join(strings.Fields(raw[i].text), " ") == lines[0] {
					line, next = raw[i].n, i+1
					break
				}
			}
			snips = append(snips, snippet{file: path, line: line, lines: lines})
		}
	})
	return snips
}

// parsesAsGo reports whether src is Go statements, declarations or a file.
func parsesAsGo(src string) bool {
	if strings.TrimSpace(src) == "" {
		return false
	}
	for _, wrapped := range []string{"package p\nfunc _() {\n" + src + "\n}\n", "package p\n" + src, src} {
		if _, err := parser.ParseFile(token.NewFileSet(), "", wrapped, 0); err == nil {
			return true
		}
	}
	return false
}

// goStart matches the first line of Go code that does not parse, such as
// one with a "..." placeholder: an assignment, a call, a declaration or a
// Go keyword that starts a statement.
var goStart = regexp.MustCompile(`^(` +
	`[A-Za-z_][\w.]*(\[[^\]]*\])?\s*(:=|[-+*/]?=[^=]|\(|<-|\+\+|--)` + // x := …, x.y = …, f(…), ch <- …
	`|[A-Za-z_]\w*(\s*,\s*[A-Za-z_]\w*)+\s*:?=` + // a, b := …
	`|(func|type|var|const|if|for|switch|select|defer|return|package|import)\b` +
	`|go\s+(func\b|[\w.]+\())`)

// looksLikeGo reports whether the first line of src that is not blank or
// a comment starts like Go code.
func looksLikeGo(src string) bool {
	for _, l := range strings.Split(src, "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "//") {
			continue
		}
		return goStart.MatchString(l)
	}
	return false
}

// normalise trims each line, collapses runs of blanks and drops empty
// lines, so that indentation and gofmt's alignment do not matter.
func normalise(src string) []string {
	var out []string
	for _, l := range strings.Split(src, "\n") {
		if l = strings.Join(strings.Fields(l), " "); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// foundIn reports whether lines appear, in a row, in one of srcs.
func foundIn(lines []string, srcs []source) bool {
	for _, s := range srcs {
		if _, n := longestRun(lines, s.lines); n == len(lines) {
			return true
		}
	}
	return false
}

// longestRun returns where in src the longest run of lines' first lines
// starts, and its length.
func longestRun(lines, src []string) (at, n int) {
	for i := range src {
		k := 0
		for k < len(lines) && i+k < len(src) && src[i+k] == lines[k] {
			k++
		}
		if k > n {
			at, n = i, k
		}
	}
	return at, n
}

// nearest says which Example comes closest to s and where they part.
func nearest(s snippet, bodies []source) string {
	best, at, n := -1, 0, 0
	for i, b := range bodies {
		if a, k := longestRun(s.lines, b.lines); k > n {
			best, at, n = i, a, k
		}
	}
	if best < 0 {
		return fmt.Sprintf("\tNo Example has its first line:\n\t\t%s", s.lines[0])
	}
	b := bodies[best]
	theirs := "(the end of its body)"
	if at+n < len(b.lines) {
		theirs = b.lines[at+n]
	}
	return fmt.Sprintf("\tNearest: %s agrees on its first %d lines; then the snippet has\n\t\t%s\n\twhere the Example has\n\t\t%s",
		b.name, n, s.lines[n], theirs)
}

// walk calls visit with the path, relative to the module root, of every
// file of the repository outside testdata and hidden folders.
func walk(t *testing.T, visit func(path string)) {
	t.Helper()
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			name := d.Name()
			if path != "." && (name == "testdata" || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_")) {
				return filepath.SkipDir
			}
			return nil
		}
		visit(filepath.ToSlash(path))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

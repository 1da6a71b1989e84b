// Command grafana-validate checks Grafana dashboard JSON files, or alert-rule provisioning
// files, strictly.
//
//	grafana-validate FILE...
//	grafana-validate --alert-rules FILE...   (see alertrules.go)
//
// Each dashboard file goes through two independent sets of checks:
//
//   - "grafana:" lines come from Grafana's own published schema, the Go foundation SDK
//     (github.com/grafana/grafana-foundation-sdk/go): a strict unmarshal (wrong types, unknown
//     fields, missing required fields) followed by the SDK's Validate().
//   - "icewatch:" lines come from icewatch's own rules (see icewatchChecks), which the SDK does
//     not enforce: titles, unique panel ids, the 24-column grid and the ClickHouse query model.
//
// It prints "FILE: ok" or one "FILE: <problem>" line per problem, and exits 0 when every file
// passes, 1 when any file fails (or cannot be read), 2 on a usage error.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/plugins"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
)

const usage = "usage: grafana-validate FILE...\n" +
	"       grafana-validate --alert-rules FILE...\n" +
	"  checks each Grafana dashboard JSON file (or alert-rule file provisioning YAML);\n" +
	"  exit 0 all ok, 1 a file failed, 2 usage error\n"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	check := validate
	if len(args) > 0 && args[0] == "--alert-rules" {
		check = validateAlertRules
		args = args[1:]
	}
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	for _, arg := range args {
		if arg == "-h" || arg == "--help" {
			fmt.Fprint(stdout, usage)
			return 0
		}
		if len(arg) > 1 && arg[0] == '-' {
			fmt.Fprintf(stderr, "grafana-validate: unknown option %q\n%s", arg, usage)
			return 2
		}
	}
	// Registers the panel and query types the strict unmarshal dispatches on.
	plugins.RegisterDefaultPlugins()

	code := 0
	for _, path := range args {
		var problems []string
		raw, err := os.ReadFile(path)
		if err != nil {
			problems = []string{err.Error()}
		} else {
			problems = check(raw)
		}
		if len(problems) == 0 {
			fmt.Fprintf(stdout, "%s: ok\n", path)
			continue
		}
		code = 1
		for _, p := range problems {
			fmt.Fprintf(stdout, "%s: %s\n", path, p)
		}
	}
	return code
}

// validate returns every problem found in one dashboard document, Grafana's first.
func validate(raw []byte) []string {
	if !json.Valid(raw) {
		var v any
		return []string{"invalid JSON: " + json.Unmarshal(raw, &v).Error()}
	}
	var problems []string
	for _, p := range grafanaChecks(raw) {
		problems = append(problems, "grafana: "+p)
	}
	for _, p := range icewatchChecks(raw) {
		problems = append(problems, "icewatch: "+p)
	}
	return problems
}

// grafanaChecks runs the SDK's strict unmarshal and Validate.
func grafanaChecks(raw []byte) []string {
	var d dashboard.Dashboard
	problems := errorLines(d.UnmarshalJSONStrict(raw))
	if len(problems) > 0 {
		// Validate would judge a half-decoded dashboard: report the decoding problems only.
		return problems
	}
	return errorLines(d.Validate())
}

// errorLines flattens an SDK error. The SDK returns an empty cog.BuildErrors (a non-nil
// error interface) on success, so an empty list counts as no error.
func errorLines(err error) []string {
	if err == nil {
		return nil
	}
	var be cog.BuildErrors
	if errors.As(err, &be) {
		lines := make([]string, 0, len(be))
		for _, e := range be {
			lines = append(lines, e.Error())
		}
		return lines
	}
	return []string{err.Error()}
}

// ---- icewatch's own checks (not Grafana's schema) ----
//
// They read the document loosely (a field of the wrong type counts as absent; the SDK already
// reports the type) and require:
//   - the dashboard has a non-empty "title" and "uid";
//   - every panel, rows and panels nested in collapsed rows included, has a non-empty "title";
//   - panel ids are unique across the dashboard;
//   - every gridPos fits the 24-column grid: x >= 0, w >= 1, x + w <= 24;
//   - every target of a ClickHouse panel (datasource type grafana-clickhouse-datasource on the
//     target, or on the panel when the target names none) has a non-empty "rawSql",
//     "editorType": "sql" and "format" an integer in 0..4.

const (
	clickhouseType = "grafana-clickhouse-datasource"
	gridColumns    = 24
	maxCHFormat    = 4 // the plugin's formats: 0 time series, 1 table, 2 logs, 3 trace, 4 auto
)

type object = map[string]any

func icewatchChecks(raw []byte) []string {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var doc object
	if err := dec.Decode(&doc); err != nil {
		return []string{"the document is not a JSON object"}
	}
	var problems []string
	for _, key := range []string{"title", "uid"} {
		if str(doc[key]) == "" {
			problems = append(problems, "dashboard "+key+" is missing or empty")
		}
	}
	seen := map[string]string{} // panel id -> path of its first use
	var walk func(panels []any, prefix string)
	walk = func(panels []any, prefix string) {
		for i, item := range panels {
			path := prefix + "[" + strconv.Itoa(i) + "]"
			panel, ok := item.(object)
			if !ok {
				continue
			}
			problems = append(problems, checkPanel(panel, path, seen)...)
			if nested, ok := panel["panels"].([]any); ok {
				walk(nested, path+".panels")
			}
		}
	}
	if panels, ok := doc["panels"].([]any); ok {
		walk(panels, "panels")
	}
	return problems
}

func checkPanel(panel object, path string, seen map[string]string) []string {
	var problems []string
	if str(panel["title"]) == "" {
		problems = append(problems, path+": panel title is missing or empty")
	}
	if id, ok := panel["id"].(json.Number); ok {
		if first, dup := seen[id.String()]; dup {
			problems = append(problems, fmt.Sprintf("%s: panel id %s already used by %s", path, id, first))
		} else {
			seen[id.String()] = path
		}
	}
	if grid, ok := panel["gridPos"].(object); ok {
		x, xok := integer(grid["x"])
		w, wok := integer(grid["w"])
		if xok && wok && (x < 0 || w < 1 || x+w > gridColumns) {
			problems = append(problems, fmt.Sprintf(
				"%s: gridPos x=%d w=%d does not fit the %d-column grid", path, x, w, gridColumns))
		}
	}
	panelType := datasourceType(panel["datasource"])
	targets, _ := panel["targets"].([]any)
	for i, item := range targets {
		target, ok := item.(object)
		if !ok {
			continue
		}
		typ := datasourceType(target["datasource"])
		if typ == "" {
			typ = panelType
		}
		if typ == clickhouseType {
			problems = append(problems, checkClickHouseTarget(target, fmt.Sprintf("%s.targets[%d]", path, i))...)
		}
	}
	return problems
}

func checkClickHouseTarget(target object, path string) []string {
	var problems []string
	if str(target["rawSql"]) == "" {
		problems = append(problems, path+": ClickHouse target rawSql is missing or empty")
	}
	if editor := str(target["editorType"]); editor != "sql" {
		problems = append(problems, fmt.Sprintf("%s: ClickHouse target editorType is %q, want \"sql\"", path, editor))
	}
	if f, ok := integer(target["format"]); !ok || f < 0 || f > maxCHFormat {
		problems = append(problems, fmt.Sprintf(
			"%s: ClickHouse target format must be an integer in 0..%d, got %v", path, maxCHFormat, target["format"]))
	}
	return problems
}

// str is v when it is a string, "" otherwise.
func str(v any) string {
	s, _ := v.(string)
	return s
}

// integer is v when it is a JSON number with an integer value.
func integer(v any) (int64, bool) {
	n, ok := v.(json.Number)
	if !ok {
		return 0, false
	}
	i, err := n.Int64()
	return i, err == nil
}

func datasourceType(v any) string {
	ref, _ := v.(object)
	return str(ref["type"])
}

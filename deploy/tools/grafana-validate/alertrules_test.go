package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/grafana/grafana-foundation-sdk/go/cog/plugins"
)

const goodRules = `apiVersion: 1
groups:
- orgId: 1
  name: g
  folder: f
  interval: 1m
  rules:
  - uid: r1
    title: t
    condition: C
    data:
    - refId: A
      relativeTimeRange: {from: 600, to: 30}
      datasourceUid: ch
      model: {refId: A, datasource: {type: grafana-clickhouse-datasource, uid: ch}, editorType: sql, format: 1,
              queryType: table, rawSql: "SELECT region, 1 AS value WHERE $__timeFilter(t)"}
    - refId: B
      datasourceUid: __expr__
      model: {refId: B, datasource: {type: __expr__, uid: __expr__}, type: reduce, expression: A, reducer: last,
              settings: {mode: dropNN}}
    - refId: C
      datasourceUid: __expr__
      model: {refId: C, datasource: {type: __expr__, uid: __expr__}, type: threshold, expression: B,
              conditions: [{evaluator: {type: gte, params: [0.2]}}]}
    noDataState: OK
    execErrState: Error
    for: 1m
    keepFiringFor: 2m
    annotations: {summary: "{{ $labels.region }}: {{ $values.B.Value }}"}
    labels: {severity: page}
    isPaused: false
`

func TestAlertRulesGood(t *testing.T) {
	plugins.RegisterDefaultPlugins()
	if problems := validateAlertRules([]byte(goodRules)); len(problems) != 0 {
		t.Fatalf("want no problems, got %q", problems)
	}
}

func TestAlertRulesBad(t *testing.T) {
	plugins.RegisterDefaultPlugins()
	cases := map[string]struct{ from, to, want string }{
		"interval number":  {"interval: 1m", "interval: 60", "file: groups[0]: interval must be a duration string such as 1m, got number 60"},
		"interval garbage": {"interval: 1m", "interval: 1 minute", `interval "1 minute" is not a duration`},
		"condition":        {"condition: C", "condition: D", `condition string "D" is not the refId of a query`},
		"no condition":     {"    condition: C\n", "", "condition is required"},
		"range string":     {"from: 600", `from: "600"`, "grafana: groups[0].rules[0]: data[0].relativeTimeRange.from: json: cannot unmarshal string"},
		"range order":      {"from: 600, to: 30", "from: 30, to: 600", "relativeTimeRange from 30 to 600"},
		"unknown field":    {"isPaused: false", "isPaused: false\n    bogus: 1", "grafana: groups[0].rules[0]: Rule: unexpected field 'bogus'"},
		"expr uid":         {"datasourceUid: __expr__", "datasourceUid: ch2", `the model is an expression but datasourceUid is "ch2"`},
		"evaluator":        {"type: gte", "type: ge", "conditions[0].evaluator.type must be one of"},
		"reduce field":     {"reducer: last,", "reducer: last, bogus: 2,", "data[1].model.TypeReduce: unexpected field 'bogus'"},
		"input refId":      {"expression: A", "expression: Z", `expression input string "Z" is not the refId`},
		"no data state":    {"noDataState: OK", "noDataState: Ok", "noDataState must be one of"},
		"dollar label":     {"severity: page", "severity: $SEV", "icewatch: groups[0].rules[0].labels.severity"},
		"clickhouse sql":   {"editorType: sql", "editorType: builder", `ClickHouse target editorType is "builder"`},
		"long uid":         {"uid: r1", "uid: " + strings.Repeat("u", 41), "is longer than 40 characters"},
		"yaml":             {"rules:", "rules: [", "invalid YAML"},
	}
	for name, c := range cases {
		doc := strings.Replace(goodRules, c.from, c.to, 1)
		if doc == goodRules {
			t.Fatalf("%s: %q not found in the good document", name, c.from)
		}
		problems := strings.Join(validateAlertRules([]byte(doc)), "\n")
		if !strings.Contains(problems, c.want) {
			t.Errorf("%s: want %q among the problems, got:\n%s", name, c.want, problems)
		}
	}
}

func TestAlertRulesDuplicateUID(t *testing.T) {
	plugins.RegisterDefaultPlugins()
	rule := goodRules[strings.Index(goodRules, "  - uid: r1"):]
	problems := strings.Join(validateAlertRules([]byte(goodRules+rule)), "\n")
	if !strings.Contains(problems, `uid "r1" already used by groups[0].rules[0]`) {
		t.Errorf("want the duplicate uid reported, got:\n%s", problems)
	}
}

func TestRunAlertRulesMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rules.yaml")
	if err := os.WriteFile(path, []byte(goodRules), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	if code := run([]string{"--alert-rules", path}, &out, &errOut); code != 0 || out.String() != path+": ok\n" {
		t.Errorf("good file: code %d, output %q", code, out.String())
	}
	if code := run([]string{"--alert-rules"}, &out, &errOut); code != 2 {
		t.Errorf("no file: code %d, want 2", code)
	}
}

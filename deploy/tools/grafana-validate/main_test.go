package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/grafana/grafana-foundation-sdk/go/cog/plugins"
)

const goodDashboard = `{"title": "t", "uid": "u", "schemaVersion": 41,
 "templating": {"list": []}, "annotations": {"list": []},
 "panels": [{"id": 1, "type": "table", "title": "a", "gridPos": {"x": 0, "y": 0, "w": 24, "h": 8},
  "datasource": {"type": "grafana-clickhouse-datasource", "uid": "ch"},
  "targets": [{"refId": "A", "rawSql": "SELECT 1", "editorType": "sql", "format": 1}]}]}`

func TestValidateGood(t *testing.T) {
	plugins.RegisterDefaultPlugins()
	if problems := validate([]byte(goodDashboard)); len(problems) != 0 {
		t.Fatalf("want no problems, got %q", problems)
	}
}

func TestValidateBad(t *testing.T) {
	plugins.RegisterDefaultPlugins()
	cases := map[string]struct{ from, to, want string }{
		"wrong type":       {`"title": "t"`, `"title": "t", "refresh": 5`, "grafana: refresh: json: cannot unmarshal number"},
		"unknown field":    {`"title": "t"`, `"title": "t", "bogus": 1`, "grafana: Dashboard: unexpected field 'bogus'"},
		"no uid":           {`"uid": "u"`, `"uid": ""`, "icewatch: dashboard uid is missing or empty"},
		"empty title":      {`"title": "a"`, `"title": ""`, "icewatch: panels[0]: panel title is missing or empty"},
		"too wide":         {`"x": 0`, `"x": 1`, "icewatch: panels[0]: gridPos x=1 w=24 does not fit"},
		"no rawSql":        {`"rawSql": "SELECT 1"`, `"rawSql": ""`, "icewatch: panels[0].targets[0]: ClickHouse target rawSql"},
		"builder editor":   {`"editorType": "sql"`, `"editorType": "builder"`, `editorType is "builder"`},
		"format not int":   {`"format": 1`, `"format": 1.5`, "format must be an integer in 0..4, got 1.5"},
		"duplicate panels": {`"panels": [`, `"panels": [{"id": 1, "type": "text", "title": "b"}, `, "panel id 1 already used by panels[0]"},
	}
	for name, c := range cases {
		doc := strings.Replace(goodDashboard, c.from, c.to, 1)
		problems := strings.Join(validate([]byte(doc)), "\n")
		if !strings.Contains(problems, c.want) {
			t.Errorf("%s: want %q among the problems, got:\n%s", name, c.want, problems)
		}
	}
}

func TestRunExitCodes(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.json")
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(good, []byte(goodDashboard), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	if code := run([]string{good}, &out, &errOut); code != 0 || out.String() != good+": ok\n" {
		t.Errorf("good file: code %d, output %q", code, out.String())
	}
	out.Reset()
	if code := run([]string{good, bad}, &out, &errOut); code != 1 || !strings.Contains(out.String(), bad+": invalid JSON") {
		t.Errorf("bad file: code %d, output %q", code, out.String())
	}
	if code := run(nil, &out, &errOut); code != 2 {
		t.Errorf("no arguments: code %d, want 2", code)
	}
}

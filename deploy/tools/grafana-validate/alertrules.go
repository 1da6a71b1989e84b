package main

// grafana-validate --alert-rules FILE...: Grafana alert-rule file provisioning (apiVersion 1).
//
// Three sets of checks, each line prefixed with its source:
//
//   - "file:" the file's shape as Grafana's provisioning reads it (pkg/services/provisioning/alerting/
//     rules_types.go): known fields only (Grafana silently ignores the others), required fields,
//     types (interval, for and keepFiringFor duration strings; relativeTimeRange whole seconds),
//     the state and expression enums, the condition and every expression input naming a refId of
//     the rule, datasourceUid "__expr__" exactly for expressions, uids unique and at most 40 long.
//   - "grafana:" each rule converted to the HTTP-API shape (folderUID, ruleGroup, orgID,
//     keep_firing_for, dashboard links as annotations) and put through the Go foundation SDK's
//     alerting.Rule strict unmarshal and Validate, which decodes the expression models strictly.
//   - "icewatch:" ClickHouse queries as in dashboards (rawSql, editorType sql, format 0..4), and no
//     "$" in the fields Grafana expands environment variables in ($$ is a literal $).

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/grafana/grafana-foundation-sdk/go/alerting"
	"github.com/grafana/grafana-foundation-sdk/go/expr"
	"gopkg.in/yaml.v3"
)

const (
	exprUID    = "__expr__"
	maxRuleUID = 40
)

var (
	topFields = fieldSet("apiVersion", "groups", "deleteRules", "contactPoints", "deleteContactPoints",
		"policies", "resetPolicies", "templates", "deleteTemplates", "muteTimes", "deleteMuteTimes")
	groupFields = fieldSet("orgId", "name", "folder", "interval", "rules")
	ruleFields  = fieldSet("uid", "title", "condition", "data", "dasboardUid", "dashboardUid", "panelId",
		"noDataState", "execErrState", "for", "keepFiringFor", "missing_series_evals_to_resolve",
		"annotations", "labels", "isPaused", "notification_settings", "record")
	queryFields = fieldSet("refId", "queryType", "relativeTimeRange", "datasourceUid", "model")
	rangeFields = fieldSet("from", "to")

	noDataStates = enum(alerting.RuleNoDataStateOK, alerting.RuleNoDataStateAlerting,
		alerting.RuleNoDataStateNoData, alerting.RuleNoDataStateKeepLast)
	execErrStates = enum(alerting.RuleExecErrStateAlerting, alerting.RuleExecErrStateError,
		alerting.RuleExecErrStateOK, alerting.RuleExecErrStateKeepLast)
	thresholdTypes = enum(expr.ExprTypeThresholdConditionsEvaluatorTypeGt, expr.ExprTypeThresholdConditionsEvaluatorTypeLt,
		expr.ExprTypeThresholdConditionsEvaluatorTypeEq, expr.ExprTypeThresholdConditionsEvaluatorTypeNe,
		expr.ExprTypeThresholdConditionsEvaluatorTypeGte, expr.ExprTypeThresholdConditionsEvaluatorTypeLte,
		expr.ExprTypeThresholdConditionsEvaluatorTypeWithinRange, expr.ExprTypeThresholdConditionsEvaluatorTypeOutsideRange,
		expr.ExprTypeThresholdConditionsEvaluatorTypeWithinRangeIncluded,
		expr.ExprTypeThresholdConditionsEvaluatorTypeOutsideRangeIncluded)
	reducers = enum(expr.TypeReduceReducerSum, expr.TypeReduceReducerMean, expr.TypeReduceReducerMin,
		expr.TypeReduceReducerMax, expr.TypeReduceReducerCount, expr.TypeReduceReducerLast, expr.TypeReduceReducerMedian)
	reduceModes     = enum(expr.ExprTypeReduceSettingsModeDropNN, expr.ExprTypeReduceSettingsModeReplaceNN)
	expressionTypes = enum("math", "reduce", "resample", "classic_conditions", "threshold", "sql")

	// Prometheus durations (model.ParseDuration, which Grafana uses): units largest first, each once.
	promDuration = regexp.MustCompile(`^(?:[0-9]+y)?(?:[0-9]+w)?(?:[0-9]+d)?(?:[0-9]+h)?(?:[0-9]+m)?(?:[0-9]+s)?(?:[0-9]+ms)?$`)
	// A "$" Grafana would expand: not part of "$$".
	bareDollar = regexp.MustCompile(`(^|[^$])(\$\$)*\$([^$]|$)`)
)

func fieldSet(names ...string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}

func enum[T ~string](values ...T) []string {
	out := make([]string, len(values))
	for i, v := range values {
		out[i] = string(v)
	}
	return out
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// validateAlertRules returns every problem of one provisioning file, file shape first.
func validateAlertRules(raw []byte) []string {
	var doc any
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return []string{"invalid YAML: " + err.Error()}
	}
	top, ok := doc.(map[string]any)
	if !ok {
		return []string{"file: the document is not a mapping"}
	}
	c := &alertChecker{uids: map[string]string{}}
	c.unknown(top, topFields, "")
	if v, ok := top["apiVersion"]; !ok || !isInt(v) || v.(int) != 1 {
		c.file("apiVersion must be 1, got %s", show(top["apiVersion"]))
	}
	groups, ok := top["groups"].([]any)
	if !ok {
		c.file("groups must be a list, got %s", show(top["groups"]))
	}
	for i, g := range groups {
		c.group(g, fmt.Sprintf("groups[%d]", i))
	}
	return c.problems
}

type alertChecker struct {
	problems []string
	uids     map[string]string // rule uid -> where it was first used
}

func (c *alertChecker) file(format string, args ...any) {
	c.problems = append(c.problems, "file: "+fmt.Sprintf(format, args...))
}

func (c *alertChecker) add(prefix, where, msg string) {
	c.problems = append(c.problems, prefix+": "+where+": "+msg)
}

func (c *alertChecker) unknown(m map[string]any, known map[string]bool, where string) {
	keys := make([]string, 0, len(m))
	for k := range m {
		if !known[k] {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		if where == "" {
			c.file("unknown field %q (Grafana ignores it)", k)
		} else {
			c.add("file", where, fmt.Sprintf("unknown field %q (Grafana ignores it)", k))
		}
	}
}

// requiredString reports a missing, non-string or blank field; returns the string ("" if not one).
func (c *alertChecker) requiredString(m map[string]any, key, where string) string {
	v, present := m[key]
	s, isStr := v.(string)
	switch {
	case !present:
		c.add("file", where, key+" is required")
	case !isStr:
		c.add("file", where, fmt.Sprintf("%s must be a string, got %s", key, show(v)))
	case strings.TrimSpace(s) == "":
		c.add("file", where, key+" is empty")
	}
	return s
}

func (c *alertChecker) duration(m map[string]any, key, where string, required bool) {
	v, present := m[key]
	if !present {
		if required {
			c.add("file", where, key+" is required (a duration string such as 1m)")
		}
		return
	}
	s, ok := v.(string)
	if !ok {
		c.add("file", where, fmt.Sprintf("%s must be a duration string such as 1m, got %s", key, show(v)))
		return
	}
	if s == "" || (!promDuration.MatchString(s) && s != "0") {
		c.add("file", where, fmt.Sprintf("%s %q is not a duration (e.g. 30s, 5m, 1h)", key, s))
	}
}

func (c *alertChecker) noDollar(value any, where string) {
	if s, ok := value.(string); ok && bareDollar.MatchString(s) {
		c.add("icewatch", where, fmt.Sprintf("%q: Grafana expands $NAME here as an environment variable (write $$ for a $)", s))
	}
}

func (c *alertChecker) group(g any, where string) {
	group, ok := g.(map[string]any)
	if !ok {
		c.add("file", where, "a group is a mapping, got "+show(g))
		return
	}
	c.unknown(group, groupFields, where)
	if v, ok := group["orgId"]; ok && !isInt(v) {
		c.add("file", where, "orgId must be an integer, got "+show(v))
	}
	name := c.requiredString(group, "name", where)
	folder := c.requiredString(group, "folder", where)
	c.noDollar(group["name"], where+".name")
	c.noDollar(group["folder"], where+".folder")
	c.duration(group, "interval", where, true)
	rules, ok := group["rules"].([]any)
	if !ok {
		c.add("file", where, "rules must be a list, got "+show(group["rules"]))
	}
	orgID := 1
	if v, ok := group["orgId"].(int); ok && v > 1 {
		orgID = v
	}
	for i, r := range rules {
		rw := fmt.Sprintf("%s.rules[%d]", where, i)
		rule, ok := r.(map[string]any)
		if !ok {
			c.add("file", rw, "a rule is a mapping, got "+show(r))
			continue
		}
		c.rule(rule, rw)
		for _, p := range sdkRuleChecks(rule, name, folder, orgID) {
			c.add("grafana", rw, p)
		}
	}
}

func (c *alertChecker) rule(rule map[string]any, where string) {
	c.unknown(rule, ruleFields, where)
	uid := c.requiredString(rule, "uid", where)
	if uid != "" {
		if len([]rune(uid)) > maxRuleUID {
			c.add("file", where, fmt.Sprintf("uid %q is longer than %d characters", uid, maxRuleUID))
		}
		if first, dup := c.uids[uid]; dup {
			c.add("file", where, fmt.Sprintf("uid %q already used by %s", uid, first))
		} else {
			c.uids[uid] = where
		}
	}
	c.requiredString(rule, "title", where)
	for _, key := range []string{"uid", "title", "condition", "dashboardUid"} {
		c.noDollar(rule[key], where+"."+key)
	}
	for _, key := range []string{"noDataState", "execErrState"} {
		allowed := noDataStates
		if key == "execErrState" {
			allowed = execErrStates
		}
		if v, ok := rule[key]; ok {
			if s, isStr := v.(string); !isStr || !contains(allowed, s) {
				c.add("file", where, fmt.Sprintf("%s must be one of %v, got %s", key, allowed, show(v)))
			}
		}
	}
	c.duration(rule, "for", where, false)
	c.duration(rule, "keepFiringFor", where, false)
	if v, ok := rule["isPaused"]; ok {
		if _, isBool := v.(bool); !isBool {
			c.add("file", where, "isPaused must be true or false, got "+show(v))
		}
	}
	for _, key := range []string{"annotations", "labels"} {
		v, ok := rule[key]
		if !ok {
			continue
		}
		m, isMap := v.(map[string]any)
		if !isMap {
			c.add("file", where, fmt.Sprintf("%s must be a mapping of strings, got %s", key, show(v)))
			continue
		}
		for k, val := range m {
			if _, isStr := val.(string); !isStr {
				c.add("file", where, fmt.Sprintf("%s.%s must be a string, got %s", key, k, show(val)))
			} else if key == "labels" {
				c.noDollar(val, fmt.Sprintf("%s.labels.%s", where, k))
			}
		}
	}

	data, ok := rule["data"].([]any)
	if !ok || len(data) == 0 {
		c.add("file", where, "data must be a non-empty list of queries, got "+show(rule["data"]))
	}
	refIDs := map[string]bool{}
	var queries []map[string]any
	for i, q := range data {
		qw := fmt.Sprintf("%s.data[%d]", where, i)
		query, ok := q.(map[string]any)
		if !ok {
			c.add("file", qw, "a query is a mapping, got "+show(q))
			continue
		}
		queries = append(queries, query)
		if ref := c.requiredString(query, "refId", qw); ref != "" {
			if refIDs[ref] {
				c.add("file", qw, fmt.Sprintf("refId %q is used twice", ref))
			}
			refIDs[ref] = true
		}
	}
	_, isRecord := rule["record"]
	if cond, ok := rule["condition"]; !ok && !isRecord {
		c.add("file", where, "condition is required (the refId whose result fires the alert)")
	} else if ok {
		if s, isStr := cond.(string); !isStr || !refIDs[s] {
			c.add("file", where, fmt.Sprintf("condition %s is not the refId of a query of the rule", show(cond)))
		}
	}
	for i, query := range queries {
		c.query(query, fmt.Sprintf("%s.data[%d]", where, i), refIDs)
	}
}

func (c *alertChecker) query(query map[string]any, where string, refIDs map[string]bool) {
	c.unknown(query, queryFields, where)
	dsUID := c.requiredString(query, "datasourceUid", where)
	model, ok := query["model"].(map[string]any)
	if !ok {
		c.add("file", where, "model must be a mapping, got "+show(query["model"]))
		model = map[string]any{}
	}
	if ref, ok := model["refId"]; ok && ref != query["refId"] {
		c.add("file", where, fmt.Sprintf("model.refId %s differs from refId %s", show(ref), show(query["refId"])))
	}
	modelDS, _ := model["datasource"].(map[string]any)
	isExpr := dsUID == exprUID
	if !isExpr && modelDS != nil && modelDS["uid"] == exprUID {
		c.add("file", where, fmt.Sprintf("the model is an expression but datasourceUid is %q, want %q", dsUID, exprUID))
	}
	if r, ok := query["relativeTimeRange"]; ok {
		rng, isMap := r.(map[string]any)
		if !isMap {
			c.add("file", where, "relativeTimeRange must be a mapping {from, to} in seconds, got "+show(r))
		} else {
			c.unknown(rng, rangeFields, where+".relativeTimeRange")
			from, fromOK := rng["from"].(int)
			to, toOK := rng["to"].(int)
			for _, key := range []string{"from", "to"} {
				if _, whole := rng[key].(int); !whole {
					c.add("file", where, fmt.Sprintf("relativeTimeRange.%s must be whole seconds, got %s", key, show(rng[key])))
				}
			}
			if fromOK && toOK && (to < 0 || from <= to) {
				c.add("file", where, fmt.Sprintf("relativeTimeRange from %d to %d: want from > to >= 0 (seconds before now)", from, to))
			}
		}
	} else if !isExpr {
		c.add("file", where, "relativeTimeRange is required for a datasource query")
	}
	if isExpr {
		c.expression(model, where, refIDs)
	} else if modelDS != nil && modelDS["type"] == clickhouseType {
		for _, p := range checkClickHouseTarget(jsonNumbers(model), where+".model") {
			c.problems = append(c.problems, "icewatch: "+p)
		}
	}
}

func (c *alertChecker) expression(model map[string]any, where string, refIDs map[string]bool) {
	typ, _ := model["type"].(string)
	if !contains(expressionTypes, typ) {
		c.add("file", where, fmt.Sprintf("expression type must be one of %v, got %s", expressionTypes, show(model["type"])))
		return
	}
	if e, ok := model["expression"]; ok && (typ == "reduce" || typ == "threshold" || typ == "resample") {
		if s, isStr := e.(string); !isStr || !refIDs[s] {
			c.add("file", where, fmt.Sprintf("expression input %s is not the refId of a query of the rule", show(e)))
		}
	}
	switch typ {
	case "reduce":
		if r, ok := model["reducer"]; ok {
			if s, _ := r.(string); !contains(reducers, s) {
				c.add("file", where, fmt.Sprintf("reducer must be one of %v, got %s", reducers, show(r)))
			}
		}
		if settings, ok := model["settings"].(map[string]any); ok {
			if m, ok := settings["mode"]; ok {
				if s, _ := m.(string); !contains(reduceModes, s) {
					c.add("file", where, fmt.Sprintf("settings.mode must be one of %v, got %s", reduceModes, show(m)))
				}
			}
		}
	case "threshold":
		conds, _ := model["conditions"].([]any)
		if len(conds) != 1 {
			c.add("file", where, fmt.Sprintf("a threshold has exactly one condition, got %d", len(conds)))
		}
		for i, cond := range conds {
			cm, _ := cond.(map[string]any)
			ev, _ := cm["evaluator"].(map[string]any)
			t, _ := ev["type"].(string)
			if !contains(thresholdTypes, t) {
				c.add("file", where, fmt.Sprintf("conditions[%d].evaluator.type must be one of %v, got %s",
					i, thresholdTypes, show(ev["type"])))
				continue
			}
			params, _ := ev["params"].([]any)
			want := 1
			if strings.Contains(t, "range") {
				want = 2
			}
			if len(params) < want {
				c.add("file", where, fmt.Sprintf("conditions[%d].evaluator %s needs %d params, got %d", i, t, want, len(params)))
			}
		}
	}
}

// sdkRuleChecks converts one file rule to the HTTP-API shape and runs the SDK's strict unmarshal
// and Validate on it. Values are carried over as they are, so a wrong type in the file is a wrong
// type for the SDK too.
func sdkRuleChecks(rule map[string]any, group, folder string, orgID int) []string {
	api := map[string]any{"ruleGroup": group, "folderUID": folder, "orgID": orgID}
	annotations := map[string]any{}
	if a, ok := rule["annotations"].(map[string]any); ok {
		for k, v := range a {
			annotations[k] = v
		}
	}
	rename := map[string]string{"keepFiringFor": "keep_firing_for",
		"missing_series_evals_to_resolve": "missingSeriesEvalsToResolve"}
	for k, v := range rule {
		switch k {
		case "annotations":
		case "dashboardUid", "dasboardUid":
			annotations["__dashboardUid__"] = v
		case "panelId":
			annotations["__panelId__"] = fmt.Sprint(v)
		default:
			if to, ok := rename[k]; ok {
				k = to
			}
			api[k] = v
		}
	}
	if len(annotations) > 0 {
		api["annotations"] = annotations
	}
	raw, err := json.Marshal(api)
	if err != nil {
		return []string{"cannot convert to the HTTP-API shape: " + err.Error()}
	}
	var r alerting.Rule
	if problems := errorLines(r.UnmarshalJSONStrict(raw)); len(problems) > 0 {
		return problems
	}
	return errorLines(r.Validate())
}

func isInt(v any) bool {
	_, ok := v.(int)
	return ok
}

// show describes a YAML value for a message: its type and, for scalars, the value.
func show(v any) string {
	switch x := v.(type) {
	case nil:
		return "nothing"
	case string:
		return fmt.Sprintf("string %q", x)
	case int:
		return fmt.Sprintf("number %d", x)
	case float64:
		return fmt.Sprintf("number %g", x)
	case bool:
		return fmt.Sprintf("boolean %t", x)
	case []any:
		return "a list"
	case map[string]any:
		return "a mapping"
	}
	return fmt.Sprintf("%T", v)
}

// jsonNumbers re-decodes a YAML-decoded value the way the dashboard checks read JSON (numbers as json.Number).
func jsonNumbers(m map[string]any) object {
	raw, err := json.Marshal(m)
	if err != nil {
		return object{}
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var out object
	if dec.Decode(&out) != nil {
		return object{}
	}
	return out
}

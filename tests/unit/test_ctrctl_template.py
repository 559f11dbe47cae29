"""ctrctl's `--format`: Go text/template as docker runs it, and one clear error for what it cannot do."""

from __future__ import annotations

from typing import Any

import pytest

from ctrctl import format
from ctrctl.errors import UsageError
from ctrctl.main import main
from ctrctl.template import TemplateError, render

OBJ: dict[str, Any] = {
    "Names": "web", "State": {"Status": "running", "Pid": 4, "Health": None}, "Env": ["A=1", "B=2"],
    "Ok": True, "Labels": {"tier": "front", "app": "shop"}, "Count": 0, "Ratio": 1.5, "Empty": [],
}


@pytest.mark.parametrize(("template", "out"), [
    ("{{.Names}}\t{{.State.Status}}", "web\trunning"),
    ("{{.Env}} {{.Ok}} {{.Labels}}", "[A=1 B=2] true map[app:shop tier:front]"),
    ("{{.Missing}}|{{.Missing.Deeper}}|{{.State.Health}}", "<no value>|<no value>|<no value>"),
    ("{{ .Names }}", "web"),
    ("{{.}}", "map[Count:0 Empty:[] Env:[A=1 B=2] Labels:map[app:shop tier:front] Names:web Ok:true Ratio:1.5 "
              "State:map[Health:<nil> Pid:4 Status:running]]"),
    ("{{- \"a\" }}  {{ \"b\" -}}  c", "a  bc"),
    ("x{{/* a comment */}}y", "xy"),
    ('{{"q\\"uote\\t"}}{{`raw\\t`}}{{\'A\'}}', 'q"uote\traw\\t65'),
])
def test_fields_literals_and_trimming(template: str, out: str) -> None:
    assert render(template, OBJ) == out


def test_json() -> None:
    assert render("{{json .State}}", OBJ) == '{"Status":"running","Pid":4,"Health":null}'
    assert render("{{json .Names}} {{json .Missing}} {{json 3.0}}", OBJ) == '"web" null 3'
    assert render("{{json .Labels}}", {"Labels": {"é": "<&>"}}) == '{"é":"<&>"}'  # no HTML or ASCII escaping
    assert format.render_template("{{json .}}", {"A": [1]}) == '{"A":[1]}'


def test_index_and_slice() -> None:
    assert render("{{index .Env 1}} {{index .Labels \"tier\"}} {{index .Labels \"nope\"}}", OBJ) == "B=2 front <no value>"
    assert render("{{index .Names 0}} {{index . \"State\" \"Pid\"}}", OBJ) == "119 4"  # a string indexes to a byte
    assert render("{{slice .Env 1}} {{slice .Names 0 2}}", OBJ) == "[B=2] we"
    with pytest.raises(TemplateError, match=r"error calling index: index out of range: 5 in \{\{index .Env 5\}\}"):
        render("{{index .Env 5}}", OBJ)
    with pytest.raises(TemplateError, match="error calling index: index of untyped nil"):
        render("{{index .State.Health 0}}", OBJ)


def test_range_with_variables_else_break_continue() -> None:
    assert render("{{range .Env}}[{{.}}]{{end}}", OBJ) == "[A=1][B=2]"
    assert render("{{range $i, $e := .Env}}{{$i}}:{{$e}} {{end}}", OBJ) == "0:A=1 1:B=2 "
    assert render("{{range $k, $v := .Labels}}{{$k}}={{$v}},{{end}}", OBJ) == "app=shop,tier=front,"  # keys sorted
    assert render("{{range .Empty}}x{{else}}none{{end}} {{range .Missing}}x{{else}}none{{end}}", OBJ) == "none none"
    assert render("{{range 3}}{{.}}{{end}}", OBJ) == "012"
    loop = '{{range .Env}}{{if eq . "A=1"}}{{continue}}{{end}}{{.}}{{break}}{{end}}'
    assert render(loop, {"Env": ["A=1", "B=2", "C=3"]}) == "B=2"
    assert render("{{range .Env}}{{$.Names}}{{end}}", OBJ) == "webweb"  # $ is the whole object
    with pytest.raises(TemplateError, match="range can't iterate over web"):
        render("{{range .Names}}{{end}}", OBJ)


def test_if_else_if_with() -> None:
    assert render("{{if .Ok}}yes{{else}}no{{end}}", OBJ) == "yes"
    assert render("{{if .Count}}yes{{else}}no{{end}} {{if .Empty}}yes{{else}}no{{end}}", OBJ) == "no no"
    chain = '{{if not .Ok}}a{{else if eq .Names "db" "web"}}b{{else}}c{{end}}'
    assert render(chain, OBJ) == "b"
    assert render("{{with .State}}{{.Pid}}{{end}}{{with .Missing}}x{{else}}-{{end}}", OBJ) == "4-"
    assert render("{{if and .Ok .Count}}x{{end}}{{or .Count .Names}}", OBJ) == "web"
    assert render("{{if and .Missing (index .Missing 0)}}x{{else}}lazy{{end}}", OBJ) == "lazy"  # and stops early
    assert render("{{$x := .Names}}{{if .Ok}}{{$x = \"db\"}}{{end}}{{$x}}", OBJ) == "db"


def test_comparisons() -> None:
    assert render("{{eq .State.Pid 4}} {{ne .Names \"web\"}} {{lt 1 2}} {{le 2 2}} {{gt 1.5 2.5}} {{ge \"b\" \"a\"}}",
                  OBJ) == "true false true true false true"
    assert render("{{.State.Pid | eq 4}}", OBJ) == "true"
    with pytest.raises(TemplateError, match="error calling eq: incompatible types for comparison"):
        render('{{eq 1 "a"}}', OBJ)
    with pytest.raises(TemplateError, match="error calling lt: invalid type for comparison"):
        render("{{lt .Env .Env}}", OBJ)


def test_string_functions() -> None:
    assert render('{{join .Env ", "}}', OBJ) == "A=1, B=2"
    assert render('{{split "a,b,c" ","}} {{len (split "a,b" ",")}}', OBJ) == "[a b c] 2"
    assert render("{{upper .Names}} {{lower \"ABC\"}} {{title \"hello wide-world\"}}", OBJ) == "WEB abc Hello Wide-World"
    assert render("[{{pad .Names 1 2}}] [{{pad \"\" 1 1}}] {{truncate .Names 2}} {{truncate .Names 9}}", OBJ) == (
        "[ web  ] [] we web")
    assert render("{{.Names | upper | printf \"<%s>\"}}", OBJ) == "<WEB>"
    with pytest.raises(TemplateError, match="error calling upper: wrong type for value; expected string; got int"):
        render("{{upper .State.Pid}}", OBJ)


def test_len() -> None:
    assert render("{{len .Env}} {{len .Labels}} {{len .Names}} {{len \"é\"}}", OBJ) == "2 2 3 2"  # bytes, like Go
    with pytest.raises(TemplateError, match="error calling len: len of type int"):
        render("{{len .State.Pid}}", OBJ)


def test_print_functions() -> None:
    assert render("{{println .Names 3}}", OBJ) == "web 3\n"
    assert render("{{print 1 2 \"a\" 3 .Missing}}", OBJ) == "1 2a3 <nil>"
    assert render('{{printf "%s-%d-%5.2f|%q|%v|%t|%x|%5s|%-4d|"  .Names 3 1.5 .Names .Env .Ok 255 "ab" 7}}', OBJ) == (
        'web-3- 1.50|"web"|[A=1 B=2]|true|ff|   ab|7   |')
    assert render('{{printf "%d %d" 1}}|{{printf "%d" "x"}}|{{printf "%s" 1 2}}|{{printf "%f" 3}}', OBJ) == (
        "1 %!d(MISSING)|%!d(string=x)|%!s(int=1)%!(EXTRA int=2)|%!f(int=3)")
    assert render('{{printf "%.1f %e %g %o %X %c %%"  2.25 1500.0 0.5 8 255 65}}', OBJ) == (
        "2.2 1.500000e+03 0.5 10 FF A %")
    assert render("{{.Ratio}} {{1e6}} {{0.00001}} {{3.0}}", OBJ) == "1.5 1e+06 1e-05 3"
    assert render('{{html "<a href=\'x\'>"}} {{urlquery "a b&c"}} {{js "it\'s"}}', OBJ) == (
        "&lt;a href=&#39;x&#39;&gt; a+b%26c it\\'s")


@pytest.mark.parametrize(("template", "message"), [
    ("{{foo .Names}}", 'function "foo" not defined in {{foo .Names}}'),
    ("{{if .Ok}}x", "missing {{end}} for {{if .Ok}}"),
    ("{{range .Env}}x{{else}}", "missing {{end}} for {{range .Env}}"),
    ("x{{end}}", "unexpected {{end}}"),
    ("{{else}}", "unexpected {{else}}"),
    ('{{template "x"}}', '{{template}} is not supported in {{template "x"}}'),
    ('{{define "x"}}y{{end}}', "{{define}} is not supported"),
    ("{{break}}", "{{break}} outside {{range}}"),
    ("{{if}}x{{end}}", "missing value for if in {{if}}"),
    ("{{}}", "missing value for command in {{}}"),
    ("{{.Names", "unclosed action"),
    ("{{(len .Env}}", "unclosed left paren"),
    ("{{.Names 1}}", "can't give argument to non-function in {{.Names 1}}"),
    ("{{.Names | .Env}}", "can't give argument to non-function"),
    ("{{.State.Health.Status}}", "nil pointer evaluating interface {}.Status"),
    ("{{.Names.First}}", "can't evaluate field First in type string"),
    ("{{$nope}}", 'undefined variable "$nope"'),
    ("{{upper}}", "wrong number of args for upper: want 1 got 0"),
    ("{{join .Env}}", "wrong number of args for join: want 2 got 1"),
    ("{{call .Names}}", "error calling call: non-function of type string"),
    ('{{"\\q"}}', "unknown escape sequence"),
])
def test_errors_name_the_action(template: str, message: str) -> None:
    with pytest.raises(TemplateError) as exc:
        render(template, OBJ)
    assert message in str(exc.value)


def test_template_rows_headers_use_docker_header_functions() -> None:
    table = format.template_rows("table {{upper .Names}}\\t{{.State.Status}}\\t{{json .Labels}}", [OBJ],
                                 {"Names": "NAMES", "Labels": "LABELS"})
    assert table.splitlines() == ["NAMES   STATUS    LABELS", 'WEB     running   {"tier":"front","app":"shop"}']
    plain = format.template_rows("{{range .Env}}{{.}};{{end}}", [OBJ, {"Env": ["C"]}], {})
    assert plain == "A=1;B=2;\nC;\n"


def test_a_bad_template_is_a_usage_error_before_any_request(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(UsageError) as exc:
        format.render_template("{{nope .X}}", OBJ)
    assert exc.value.exit_code == 125
    assert exc.value.line == 'Error: template parsing error: function "nope" not defined in {{nope .X}}'
    format.check_template("table {{.ID}}\\t{{.Names}}")
    format.check_template("json")
    # the CLI stops at parse time: the unreachable socket is never dialled, exit 125, one line
    for argv in (["ps", "--format", "{{if .ID}}"], ["inspect", "-f", "{{index}}", "x"], ["images", "--format", "{{x}}"]):
        assert main(["-a", "/nonexistent/ctrd.sock", *argv]) == 125
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("Error: template parsing error: ")

// Generated once from real Jinja2 (transformers' ImmutableSandboxedEnvironment with trim_blocks and
// lstrip_blocks): each template's expected output is what jinja2 3.1 rendered.
#include "construct_cases.h"

namespace nibble::test {

const std::vector<ConstructCase>& construct_cases() {
  static const std::vector<ConstructCase> cases = {
      {"whitespace", R"TPL(a
  {# c #}
b)TPL",
       R"TPL(a
b)TPL"},
      {"whitespace", R"TPL(a
  {# c #}  
b)TPL",
       R"TPL(a
  
b)TPL"},
      {"whitespace", R"TPL(a
  {% if 1 %}  x
  {% endif %}
b)TPL",
       R"TPL(a
  x
b)TPL"},
      {"whitespace", R"TPL(  {{ 1 }}
)TPL",
       R"TPL(  1)TPL"},
      {"whitespace", R"TPL(a
	{%+ if 1 %}
y{% endif +%}
z)TPL",
       R"TPL(a
	y
z)TPL"},
      {"whitespace", R"TPL(a
b
)TPL",
       R"TPL(a
b)TPL"},
      {"whitespace", R"TPL({% raw %}
 {{x}}{% endraw %}
)TPL",
       R"TPL(
 {{x}})TPL"},
      {"whitespace", R"TPL(  {%- if 1 %}a{% endif %})TPL",
       R"TPL(a)TPL"},
      {"misc", R"TPL({% for i in [1,2] %}{% if i == 2 %}{{ x }}{% endif %}{% set x = i %}{% endfor %})TPL",
       R"TPL()TPL"},
      {"misc", R"TPL({% set x = 5 %}{% for i in [1,2] %}{{ x }}{% set x = i %}{{x}}{% endfor %}{{x}})TPL",
       R"TPL(51525)TPL"},
      {"misc", R"TPL({{ "a\d\n\x41\u00e9" }})TPL",
       R"TPL(a\d
Aé)TPL"},
      {"misc", R"TPL({{ 'a' 'b' }})TPL",
       R"TPL(ab)TPL"},
      {"whitespace", R"TPL(a  {#- c #}
 b)TPL",
       R"TPL(a b)TPL"},
      {"whitespace", R"TPL({% raw %}a{% endraw %}
b)TPL",
       R"TPL(ab)TPL"},
      {"whitespace", R"TPL(  {% raw %}a{% endraw %}
b)TPL",
       R"TPL(ab)TPL"},
      {"whitespace", R"TPL({% raw -%}
  a  {%- endraw %}b)TPL",
       R"TPL(ab)TPL"},
      {"whitespace", R"TPL(x  {% if 1 %}y{% endif %})TPL",
       R"TPL(x  y)TPL"},
      {"whitespace", R"TPL(
  {%- if 1 -%}  
 y{% endif %})TPL",
       R"TPL(y)TPL"},
      {"whitespace", R"TPL({% if 1 %}
y{% endif %})TPL",
       R"TPL(y)TPL"},
      {"whitespace", R"TPL({{ 1 }}
{{ 2 }})TPL",
       R"TPL(1
2)TPL"},
      {"whitespace", R"TPL({% set x %}
  ab  
{% endset %}[{{x}}])TPL",
       R"TPL([  ab  
])TPL"},
      {"misc", R"TPL({{ 1 if 0 }}|{{ (1,) }}|{{ [1,'a',None,True,1.0,{'k':"it's"}] }})TPL",
       R"TPL(|(1,)|[1, 'a', None, True, 1.0, {'k': "it's"}])TPL"},
      {"misc", R"TPL({% for k, v in {"a":1}.items() %}{{k}}={{v}}{% else %}E{% endfor %})TPL",
       R"TPL(a=1)TPL"},
      {"misc", R"TPL({{ none.x }}|{{ none["x"] }})TPL",
       R"TPL(|)TPL"},
      {"misc", R"TPL({{ [1,2][5] }}|{{ "abc"[-1] }}|{{ "héllo"[1:3] }})TPL",
       R"TPL(|c|él)TPL"},
      {"misc", R"TPL({% macro m(a) %}<{{a}}>{% endmacro %}{{ m(1) + "<b>" }}|{{ "<a>" + m(2) }})TPL",
       R"TPL(<1><b>|<a><2>)TPL"},
      {"misc", R"TPL({% macro m() %}{{ x }}{% endmacro %}{% set x = 1 %}{{ m() }})TPL",
       R"TPL(1)TPL"},
      {"misc", R"TPL({% set x = 1 %}{% macro m() %}{{ x }}{% endmacro %}{% set x = 2 %}{{ m() }})TPL",
       R"TPL(2)TPL"},
      {"misc", R"TPL({% macro m(a, b=a) %}{{a}}{{b}}{{varargs}}{{kwargs}}{% endmacro %}{{ m(1) }}|{{ m(1,2,3) }})TPL",
       R"TPL(11(){}|12(3,){})TPL"},
      {"misc", R"TPL({% for x in [1,2,3] if x > 1 %}{{loop.index}}/{{loop.length}}{{ loop.previtem }}{{ loop.nextitem }}{{loop.first}}{{loop.last}}{{loop.revindex}}{% endfor %})TPL",
       R"TPL(1/23TrueFalse22/22FalseTrue1)TPL"},
      {"misc", R"TPL({{ [3,1,2]|sort }}{{ 7 // 2 }}{{ -7 // 2 }}{{ 7 % -3 }}{{ 2 ** 10 }}{{ 1 / 2 }}{{ 4 / 2 }}{{ 7.5 // 2 }}{{ -7.5 % 2 }})TPL",
       R"TPL([1, 2, 3]3-4-210240.52.03.00.5)TPL"},
      {"misc", R"TPL({{ "%s-%d" % ("a", 3) }}|{{ "%s"|format([1]) }})TPL",
       R"TPL(a-3|[1])TPL"},
      {"misc", R"TPL({{ "a" * 3 }}{{ [1] * 2 }})TPL",
       R"TPL(aaa[1, 1])TPL"},
      {"misc", R"TPL({{ 'abc' % [1] }}|{{ 'abc' % {'a': 1} }}|{{ 'abc' % () }}|{{ 'x%s' % [1] }})TPL",
       R"TPL(abc|abc|abc|x[1])TPL"},
      {"misc", R"TPL({{ "" * 22222222222 }}{{ [] * 10000000000 }}|{{ ("ab" * 0) * 99999999999 }}|{{ () * 12345678901 }})TPL",
       R"TPL([]||())TPL"},
      {"misc", R"TPL({{ 1 == 1.0 }}{{ True + 1 }})TPL",
       R"TPL(True2)TPL"},
      {"misc", R"TPL({{ 'abc'[::-1] }}{{ [1,2,3,4,5][1:-1:2] }}{{ [1,2,3][-2:] }}{{ 'héllo wörld'[-3:] }}{{ [1,2,3][::-2] }}{{ [1,2][5:] }})TPL",
       R"TPL(cba[2, 4][2, 3]rld[3, 1][])TPL"},
      {"misc", R"TPL({{ x is defined }}{{ x is undefined }}{{ none is none }}{{ 1 is number }}{{ true is number }}{{ 1 is integer }}{{ true is integer }}{{ 1.0 is float }}{{ 'a' is string }}{{ {} is mapping }}{{ [] is iterable }}{{ 'a' is iterable }}{{ x is iterable }}{{ 3 is odd }}{{ 4 is even }}{{ 9 is divisibleby 3 }}{{ 9 is divisibleby(4) }}{{ 'a' is eq 'a' }}{{ 'abc' is lower }}{{ 'ABC' is upper }}{{ true is true }}{{ 1 is true }}{{ false is false }}{{ true is boolean }}{{ 'a' is sequence }}{{ 1 is sequence }})TPL",
       R"TPL(FalseTrueTrueTrueTrueTrueFalseTrueTrueTrueTrueTrueTrueTrueTrueTrueFalseTrueTrueTrueTrueFalseTrueTrueTrueFalse)TPL"},
      {"misc", R"TPL({{ '  a b  '|trim }}|{{ 'xxaxx'|trim('x') }}|{{ 'hello world'|title }}|{{ 'hELLO'|capitalize }}|{{ 'a-b c'|title }}|{{ 'ab'|upper }}{{ 'AB'|lower }}|{{ 'aaa'|replace('a','b',2) }})TPL",
       R"TPL(a b|a|Hello World|Hello|A-B C|ABab|bba)TPL"},
      {"misc", R"TPL({{ [1,2,3]|join(', ') }}|{{ [1,2,3]|first }}{{ [1,2,3]|last }}|{{ 'abc'|list }}|{{ 12|string }}|{{ '42'|int + 1 }}|{{ '3.7'|int }}|{{ 'x'|int }}|{{ '2.5'|float }}|{{ -3|abs }}|{{ 2.567|round(2) }}|{{ 2.5|round }}|{{ 3|float }})TPL",
       R"TPL(1, 2, 3|13|['a', 'b', 'c']|12|43|3|0|2.5|3|2.57|2.0|3.0)TPL"},
      {"misc", R"TPL({{ [{'a':1,'b':'x'},{'a':2}]|map(attribute='a')|list }}{{ ['a','b']|map('upper')|join }}{{ [1,2,3,4]|select('odd')|list }}{{ [1,2,3,4]|reject('odd')|list }}{{ [{'r':'u'},{'r':'a'}]|selectattr('r','equalto','u')|list }}{{ [{'r':'u'},{'r':'a'}]|rejectattr('r','eq','u')|list }}{{ [{'t':1},{}]|selectattr('t','defined')|list }}{{ [0,1,'',2]|select|list }})TPL",
       R"TPL([1, 2]AB[1, 3][2, 4][{'r': 'u'}][{'r': 'a'}][{'t': 1}][1, 2])TPL"},
      {"misc", R"TPL({{ 'a\nb\n\nc'|indent(2) }}|{{ 'a\nb'|indent(2, true) }}|{{ 'a\n\nb'|indent(2, blank=true) }}|{{ 'a\nb\n'|indent('--') }})TPL",
       R"TPL(a
  b

  c|  a
  b|a
  
  b|a
--b
)TPL"},
      {"misc", R"TPL({{ {'a': [1, 2.5, 'é', None, True], 'b': {}}|tojson }}|{{ {'a': [1, {'c': []}]}|tojson(indent=2) }}|{{ 'é'|tojson(ensure_ascii=True) }}|{{ {'b':1,'a':2}|tojson(sort_keys=true) }}|{{ [1,2]|tojson(separators=(',',':')) }}|{{ '"\\\n\t<>&\u0001'|tojson }})TPL",
       R"TPL({"a": [1, 2.5, "é", null, true], "b": {}}|{
  "a": [
    1,
    {
      "c": []
    }
  ]
}|"\u00e9"|{"a": 2, "b": 1}|[1,2]|"\"\\\n\t<>&\u0001")TPL"},
      {"misc", R"TPL({{ x|default('d') }}{{ none|default('d') }}{{ ''|default('d', true) }}{{ 0|d('z', boolean=true) }}{{ x|length }}{{ 'héllo'|length }}{{ {'a':1}|length }}{{ [1,2]|count }})TPL",
       R"TPL(dNonedz0512)TPL"},
      {"misc", R"TPL({{ {'a':1,'b':2}|items|list }}{% for k, v in {'a':1,'b':2}|dictsort(reverse=true) %}{{k}}{{v}}{% endfor %}{{ [1,2,3]|sum }}{{ [1,5,3]|max }}{{ [4,2,8]|min }}{{ 'hello world foo'|wordcount }}{{ 'abc'|reverse }}{{ [1,2]|reverse|list }}{{ 'x'|center(5) }}|)TPL",
       R"TPL([('a', 1), ('b', 2)]b2a16523cba[2, 1]  x  |)TPL"},
      {"misc", R"TPL({% set ns = namespace(a=1, items=[]) %}{% for i in range(3) %}{% set ns.a = ns.a + i %}{% endfor %}{{ ns.a }}{{ ns.b }}{{ ns }})TPL",
       R"TPL(4<Namespace {'a': 4, 'items': []}>)TPL"},
      {"misc", R"TPL({% set a, b = 1, 2 %}{{ a }}{{ b }}{% set t = (1, 2) %}{{ t }}{{ t[0] }})TPL",
       R"TPL(12(1, 2)1)TPL"},
      {"misc", R"TPL({{ range(5)|list }}{{ range(1, 10, 3)|list }}{{ range(5, 0, -2)|list }}{{ dict(a=1, b='x') }}{{ dict({'z': 0}, y=1) }})TPL",
       R"TPL([0, 1, 2, 3, 4][1, 4, 7][5, 3, 1]{'a': 1, 'b': 'x'}{'z': 0, 'y': 1})TPL"},
      {"misc", R"TPL({{ strftime_now('%Y-%m-%d %d %b %Y') }})TPL",
       R"TPL(2023-11-14 14 Nov 2023)TPL"},
      {"misc", R"TPL({{ '  x  '.strip() }}|{{ 'xxyxx'.lstrip('x') }}|{{ 'a,b,,c'.split(',') }}|{{ ' a  b '.split() }}|{{ 'a b c'.split(' ', 1) }}|{{ 'abc'.startswith('ab') }}{{ 'abc'.endswith(('x','c')) }}|{{ 'Hello'.upper() }}{{ 'Hello'.lower() }}{{ "they're bill's".title() }}|{{ 'aaa'.replace('a', 'bb') }}|{{ 'hello'.find('l') }}{{ 'hello'.rfind('l') }}{{ 'hello'.count('l') }}|{{ '{} and {name}'.format(1, name='n') }}|{{ '-'.join(['a','b']) }}|{{ 'a\nb\r\nc'.splitlines() }}|{{ 'a b c'.rsplit(' ', 1) }})TPL",
       R"TPL(x|yxx|['a', 'b', '', 'c']|['a', 'b']|['a', 'b c']|TrueTrue|HELLOhelloThey'Re Bill'S|bbbbbb|232|1 and n|a-b|['a', 'b', 'c']|['a b', 'c'])TPL"},
      {"misc", R"TPL({% for k in {'a':1, 'b':2} %}{{ k }}{% endfor %}{% for k, v in {'a':1}.items() %}{{ k }}{{ v }}{% endfor %}{{ {'a':1}.keys()|list }}{{ {'a':1}.values()|list }}{{ {'a':1}.get('a') }}{{ {'a':1}.get('b') }}{{ {'a':1}.get('b', 5) }})TPL",
       R"TPL(aba1['a'][1]1None5)TPL"},
      {"misc", R"TPL({% for i in range(10) %}{% if i == 2 %}{% continue %}{% endif %}{% if i == 5 %}{% break %}{% endif %}{{ i }}{% endfor %})TPL",
       R"TPL(0134)TPL"},
      {"misc", R"TPL({% macro f(x) %}[{{ caller(x) }}]{% endmacro %}{% call(y) f(3) %}got {{ y }}{% endcall %})TPL",
       R"TPL([got 3])TPL"},
      {"misc", R"TPL({% filter upper %}hello {{ 'x' }}{% endfilter %}|{% set v | trim %}  pad  {% endset %}{{ v }})TPL",
       R"TPL(HELLO X|pad)TPL"},
      {"misc", R"TPL({{ 1 < 2 < 3 }}{{ 3 > 2 > 5 }}{{ 'a' in 'abc' }}{{ 'z' not in ['a'] }}{{ 'k' in {'k':1} }}{{ not 1 }}{{ not 1 == 2 }}{{ 1 and 'x' }}{{ 0 or 'y' }}{{ none or 0 }})TPL",
       R"TPL(TrueFalseTrueTrueTrueFalseTruexy0)TPL"},
      {"misc", R"TPL({{ 0.1 + 0.2 }}{{ 1e20 }}{{ 1.5e-7 }}{{ 100.0 }}{{ 1/3 }}{{ 1e16 }}{{ 123456789012345678.0 }}{{ 0.0001 }}{{ 0.00001 }})TPL",
       R"TPL(0.300000000000000041e+201.5e-07100.00.33333333333333331e+161.2345678901234568e+170.00011e-05)TPL"},
      {"misc", R"TPL({{ [1, [2, 'x'], {'k': (1,)}] }}{{ {'a': "x'y", 'b': 'q"r', 'c': 'both\'"'} }}{{ ('a',) }}{{ () }}{{ ['a\nb'] }})TPL",
       R"TPL([1, [2, 'x'], {'k': (1,)}]{'a': "x'y", 'b': 'q"r', 'c': 'both\'"'}('a',)()['a\nb'])TPL"},
      {"misc", R"TPL({% if x %}a{% elif y %}b{% else %}c{% endif %})TPL",
       R"TPL(c)TPL"},
      {"misc", R"TPL({% for x in [] %}a{% else %}empty{% endfor %})TPL",
       R"TPL(empty)TPL"},
      {"misc", R"TPL({% with a = 1 %}{{ a }}{% endwith %}{{ a }})TPL",
       R"TPL(1)TPL"},
      {"misc", R"TPL({% generation %}gen {{ 1 }}{% endgeneration %})TPL",
       R"TPL(gen 1)TPL"},
      {"misc", R"TPL({{ ('a' ~ 'b')|upper }})TPL",
       R"TPL(AB)TPL"},
      {"misc", R"TPL({{ 'abc' | replace('b', '') }})TPL",
       R"TPL(ac)TPL"},
      {"misc", R"TPL({{ messages[0]['content'] }}{{ messages[0].content }}{{ messages[1] }}{{ messages|length }})TPL",
       R"TPL(syssys{'role': 'user', 'content': 'hi'}3)TPL"},
      {"misc", R"TPL({{ 3|string + 'x' }}{{ 'ab'[0] }}{{ [1,2,3][1] }}{{ 'x' * 0 }}|{{ -0.0 }}{{ 5 % 3 }}{{ -5 % 3 }}{{ 5.0 % 3 }})TPL",
       R"TPL(3xa2|-0.0212.0)TPL"},
      {"misc", R"TPL({{ 'a' if 1 else 'b' }}{{ 'a' if 0 else 'b' if 0 else 'c' }})TPL",
       R"TPL(ac)TPL"},
      {"misc", R"TPL({{ none }}{{ true }}{{ True }}{{ false }}{{ [none, true] }})TPL",
       R"TPL(NoneTrueTrueFalse[None, True])TPL"},
      {"misc", R"TPL({#- comment -#}  x  {#+ c +#}
 y)TPL",
       R"TPL(x  
 y)TPL"},
      {"misc", R"TPL({% for m in messages %}{{ loop.index0 }}:{{ m.role }}{% if not loop.last %},{% endif %}{% endfor %})TPL",
       R"TPL(0:system,1:user,2:assistant)TPL"},
      {"misc", R"TPL({% set x = [1,2,3] %}{{ x|length > 2 }}{{ x[1:]|join }})TPL",
       R"TPL(True23)TPL"},
      {"misc", R"TPL({{ 'x'|e }}{{ '<a href="x">'|escape }}{{ '<b>'|safe }})TPL",
       R"TPL(x&lt;a href=&#34;x&#34;&gt;<b>)TPL"},
      {"misc", R"TPL({{ (1, 2)|tojson }})TPL",
       R"TPL([1, 2])TPL"},
      {"misc", R"TPL({{ {'a':1}|tojson(indent=0) }})TPL",
       R"TPL({
"a": 1
})TPL"},
      {"misc", R"TPL({{ {'a':{'b':[1]}}|tojson(indent='\t') }})TPL",
       R"TPL({
	"a": {
		"b": [
			1
		]
	}
})TPL"},
      {"misc", R"TPL({{ 'abc' is string and 'abc' }})TPL",
       R"TPL(abc)TPL"},
      {"misc", R"TPL({% if messages[0]['role'] == 'system' %}sys{% endif %})TPL",
       R"TPL(sys)TPL"},
      {"misc", R"TPL({{ '%s' % 'x' }}{{ '%s %s' % ('a', 'b') }}{{ '%d%%' % 5 }})TPL",
       R"TPL(xa b5%)TPL"},
      {"whitespace", R"TPL({% for i in [1, 2] %}
  {{ i }}
{% endfor %}
)TPL",
       R"TPL(  1
  2
)TPL"},
      {"whitespace", R"TPL(<
  {%- for i in [1, 2] -%}
  [{{ i }}]
  {%- endfor -%}
>)TPL",
       R"TPL(<[1][2]>)TPL"},
      {"whitespace", R"TPL({{- ' a ' -}}   
  {{- 'b' }}  {{ 'c' -}}

 d)TPL",
       R"TPL( a b  cd)TPL"},
      {"whitespace", R"TPL(line1
    {% if true %}
    inner
    {% endif %}
line2)TPL",
       R"TPL(line1
    inner
line2)TPL"},
      {"namespace", R"TPL({% set ns = namespace(found=false, idx=-1) %}{% for m in messages %}{% if m.role == 'assistant' %}{% set ns.found = true %}{% set ns.idx = loop.index0 %}{% endif %}{% endfor %}{{ ns.found }} {{ ns.idx }})TPL",
       R"TPL(True 2)TPL"},
      {"namespace", R"TPL({% set ns = namespace(s='') %}{% for c in 'abc' %}{% set ns.s = c ~ ns.s %}{% endfor %}{{ ns.s }})TPL",
       R"TPL(cba)TPL"},
      {"macros", R"TPL({% macro greet(name, greeting='Hello', punct='!') %}{{ greeting }}, {{ name }}{{ punct }}{% endmacro %}{{ greet('Ann') }} {{ greet('Bo', 'Hi') }} {{ greet('Cy', punct='?') }})TPL",
       R"TPL(Hello, Ann! Hi, Bo! Hello, Cy?)TPL"},
      {"macros", R"TPL({% macro outer(x) %}{% macro inner(y) %}<{{ y }}>{% endmacro %}{{ inner(x) }}{{ inner(x * 2) }}{% endmacro %}{{ outer(2) }})TPL",
       R"TPL(<2><4>)TPL"},
      {"macros", R"TPL({% macro rec(n) %}{{ n }}{% if n > 0 %}{{ rec(n - 1) }}{% endif %}{% endmacro %}{{ rec(4) }})TPL",
       R"TPL(43210)TPL"},
      {"slices", R"TPL({{ [0,1,2,3,4,5][::2] }}{{ [0,1,2,3,4,5][-1:0:-2] }}{{ 'abcdef'[1:-1] }}{{ 'abcdef'[:100] }}{{ 'abcdef'[-100:2] }}{{ messages[1:] | map(attribute='role') | list }}{{ messages[::-1][0].role }})TPL",
       R"TPL([0, 2, 4][5, 3, 1]bcdeabcdefab['user', 'assistant']assistant)TPL"},
      {"loops", R"TPL({% for a, b in [[1, 2], [3, 4]] %}{{ a + b }},{% endfor %}{% for m in messages %}{{ loop.revindex0 }}{{ loop.depth }}{% endfor %})TPL",
       R"TPL(3,7,211101)TPL"},
      {"loops", R"TPL({% for i in range(3) %}{% for j in range(i) %}{{ i }}{{ j }}{{ loop.index }}|{% endfor %}{% endfor %})TPL",
       R"TPL(101|201|212|)TPL"},
      {"loops", R"TPL({% for x in messages if x.role != 'system' %}{{ loop.index }}{{ x.role[0] }}{% endfor %})TPL",
       R"TPL(1u2a)TPL"},
      {"expressions", R"TPL({{ (1 + 2) * 3 }}{{ 7 - -2 }}{{ 'a' + 'b' ~ 3 }}{{ [1] + [2] }}{{ (1, 2) + (3,) }}{{ 3 > 2 and 'yes' or 'no' }}{{ not (1 in [1]) }}{{ 1 if none else 2 }}{{ 10 // 3 * 3 + 10 % 3 }})TPL",
       R"TPL(99ab3[1, 2](1, 2, 3)yesFalse210)TPL"},
      {"expressions", R"TPL({{ {'a': 1, 'b': [1, 2]}['b'][1] }}{{ {'a': {'b': 'c'}}.a.b }}{{ messages[0]['role'] }}{{ messages[-1].content }}{{ [1,2,3].index(2) }}{{ [1,1,2].count(1) }})TPL",
       R"TPL(2csystemyo12)TPL"},
      {"tests", R"TPL({{ none is not none }}{{ 1 is not string }}{{ 'x' is not defined }}{{ messages is sequence }}{{ messages[0] is mapping }}{{ 2 is ge 1 }}{{ 2 is lt 1 }}{{ 'a' is in 'abc' }}{{ none is sameas none }}{{ 1.5 is number }})TPL",
       R"TPL(FalseTrueFalseTrueTrueTrueFalseTrueTrueTrue)TPL"},
      {"filters", R"TPL({{ messages | selectattr('role', 'in', ['user']) | map(attribute='content') | join('/') }}{{ messages | map(attribute='missing', default='?') | list }}{{ [3, 1] | max }}{{ [{'n': 2}, {'n': 5}] | sum(attribute='n') }}{{ 'a b' | wordcount }}{{ 'ab' | center(6) }}|)TPL",
       R"TPL(hi['?', '?', '?']372  ab  |)TPL"},
      {"tojson", R"TPL({{ messages | tojson }}|{{ messages[0] | tojson(indent=2) }}|{{ 'ü' | tojson }}|{{ 1.0 | tojson }}|{{ [1e100, -0.5, 1234567890123456789] | tojson }}|{{ {'x': none, 'y': true} | tojson }})TPL",
       R"TPL([{"role": "system", "content": "sys"}, {"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]|{
  "role": "system",
  "content": "sys"
}|"ü"|1.0|[1e+100, -0.5, 1234567890123456789]|{"x": null, "y": true})TPL"},
      {"strings", R"TPL({{ 'Hello World'.title() }}{{ 'a\tb'.split() }}{{ 'x'.join(['1', '2']) }}{{ 'abc'.upper().lower() }}{{ '  x '.rstrip() }}|{{ 'ab'.removeprefix('a') }}{{ 'hello'.capitalize() }}{{ 'A1'.isalnum() }}{{ '12'.isdigit() }}{{ 'a,b'.split(',', 1) }})TPL",
       R"TPL(Hello World['a', 'b']1x2abc  x|bHelloTrueTrue['a', 'b'])TPL"},
  };
  return cases;
}

const std::vector<ErrorCase>& runtime_error_cases() {
  static const std::vector<ErrorCase> cases = {
      {R"TPL({{ x.y }})TPL", R"TPL(UndefinedError: 'x' is undefined)TPL"},
      {R"TPL({{ raise_exception('boom') }})TPL", R"TPL(TemplateError: boom)TPL"},
      {R"TPL({{ -1|abs }}{{ - 2 ** 2 }}{{ 2 * 3 + 4 }}{{ 2 + 3 * 4 }}{{ 10 - 2 - 3 }}{{ 2 ** 3 ** 2 }}{{ 'a' ~ 1 ~ none }}{{ 1 ~ 2 + 3 }})TPL", R"TPL(TypeError: can only concatenate str (not "int") to str)TPL"},
      {R"TPL({{ x.y.z }})TPL", R"TPL(UndefinedError: 'x' is undefined)TPL"},
      {R"TPL({{ undefined_fn() }})TPL", R"TPL(UndefinedError: 'undefined_fn' is undefined)TPL"},
      {R"TPL({{ [1].append(2) }})TPL", R"TPL(SecurityError: access to attribute 'append' of 'list' object is unsafe.)TPL"},
      {R"TPL({{ {'a':1}.update({}) }})TPL", R"TPL(SecurityError: access to attribute 'update' of 'dict' object is unsafe.)TPL"},
      {R"TPL({{ 1 + 'a' }})TPL", R"TPL(TypeError: unsupported operand type(s) for +: 'int' and 'str')TPL"},
      {R"TPL({{ 'abc' % 5 }})TPL", R"TPL(TypeError: not all arguments converted during string formatting)TPL"},
      {R"TPL({{ 'abc' % 'x' }})TPL", R"TPL(TypeError: not all arguments converted during string formatting)TPL"},
      {R"TPL({{ x + 1 }})TPL", R"TPL(UndefinedError: 'x' is undefined)TPL"},
      {R"TPL({{ 1 / 0 }})TPL", R"TPL(ZeroDivisionError: division by zero)TPL"},
      {R"TPL({% for a in 1 %}{% endfor %})TPL", R"TPL(TypeError: 'int' object is not iterable)TPL"},
      {R"TPL({{ 'a' < 1 }})TPL", R"TPL(TypeError: '<' not supported between instances of 'str' and 'int')TPL"},
      {R"TPL({% if %})TPL", R"TPL(TemplateSyntaxError: Expected an expression, got 'end of statement block')TPL"},
      {R"TPL({% for %})TPL", R"TPL(TemplateSyntaxError: Expected an expression, got 'end of statement block')TPL"},
      {R"TPL({{ }})TPL", R"TPL(TemplateSyntaxError: Expected an expression, got 'end of print statement')TPL"},
      {R"TPL({% endif %})TPL", R"TPL(TemplateSyntaxError: Encountered unknown tag 'endif'.)TPL"},
      {R"TPL({{ 1 |wordwrap }})TPL", R"TPL(AttributeError: 'int' object has no attribute 'splitlines')TPL"},
      {R"TPL({% include 'x' %})TPL", R"TPL(TypeError: no loader for this environment specified)TPL"},
      {R"TPL({{ loop.index }})TPL", R"TPL(UndefinedError: 'loop' is undefined)TPL"},
      {R"TPL({% set ns = namespace() %}{% set ns._x = 1 %})TPL", R"TPL(SecurityError: Chat templates cannot store underscore-prefixed attributes on a namespace, but got '_x'. Please rename the attribute.)TPL"},
      {R"TPL({{ foo is foo }})TPL", R"TPL(TemplateAssertionError: No test named 'foo'.)TPL"},
      {R"TPL({{ x|tojson }})TPL", R"TPL(TypeError: Object of type Undefined is not JSON serializable)TPL"},
      {R"TPL({{ 3 in [1, 2, 3] }}{{ 'a' in none }})TPL", R"TPL(TypeError: argument of type 'NoneType' is not iterable)TPL"},
  };
  return cases;
}

}  // namespace nibble::test

#!/usr/bin/env python3
"""Golden prompts for nibble's chat-template interpreter, rendered by transformers itself.

Re-run (CPU is enough; no torch needed):
    pip install transformers jinja2 tokenizers
    python3 tools/make_chat_template_goldens.py            # writes tests/data/chat_template/*.json
    python3 tools/make_chat_template_goldens.py --shared ../shared --out tests/data/chat_template

For every template (the six shared tokenizers' and a few hand-written ones below) every
conversation in CONVERSATIONS is rendered with `tokenizer.apply_chat_template(tokenize=False)`;
the expected text, or the exception message when transformers refuses, goes into the golden.
Each tokenizer is loaded from a temporary folder holding tokenizer.json and
tokenizer_config.json, so special tokens come from the config exactly as transformers reads it.
strftime_now() is pinned to NOW (noon UTC, so a date-only format is the same in every zone).
"""
import argparse
import datetime as _dt
import json
import lzma
import os
import shutil
import sys
import tempfile

import transformers
import transformers.utils.chat_template_utils as ctu
from transformers import PreTrainedTokenizerFast

NOW = 1699963200  # 2023-11-14 12:00:00 UTC


class _FixedDateTime(_dt.datetime):
    @classmethod
    def now(cls, tz=None):
        return _dt.datetime.fromtimestamp(NOW, tz)


ctu.datetime = _FixedDateTime  # strftime_now() reads chat_template_utils.datetime.now()

SHARED_MODELS = ["llama3", "qwen3", "qwen2_5", "gemma3", "gpt2", "mistral_nemo"]

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather in a city, in Celsius or Fahrenheit.",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "description": "City name, e.g. \"Paris\""},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            },
            "required": ["city"],
        },
        "return": {"type": "number"},
    },
}
TIME_TOOL = {
    "type": "function",
    "function": {
        "name": "get_time",
        "description": "Current time in a time zone (IANA name, like Europe/Zürich).",
        "parameters": {"type": "object", "properties": {"tz": {"type": "string"}}, "required": ["tz"]},
    },
}

SYSTEM = {"role": "system", "content": "You are a helpful assistant."}
U1 = {"role": "user", "content": "What is the capital of France?"}
A1 = {"role": "assistant", "content": "The capital of France is Paris."}
U2 = {"role": "user", "content": "And of Italy?"}

TRICKY = (
    "Quotes ' and \" and `back`, backslash \\ and braces {{ not a tag }} {% nor this %}\n"
    "Unicode: café, 中文, русский, emoji 🦙, combining é, NBSP[\u00a0]\n\n"
    "  leading and trailing spaces  \n\t tab line\n"
)

CONVERSATIONS = [
    {"name": "system_user_gen", "messages": [SYSTEM, U1], "add_generation_prompt": True},
    {"name": "system_user_nogen", "messages": [SYSTEM, U1], "add_generation_prompt": False},
    {"name": "multi_turn", "messages": [SYSTEM, U1, A1, U2], "add_generation_prompt": True},
    {"name": "no_system", "messages": [U1, A1, U2], "add_generation_prompt": True},
    {"name": "single_user_nogen", "messages": [U1], "add_generation_prompt": False},
    {"name": "ends_with_assistant", "messages": [U1, A1], "add_generation_prompt": False},
    {"name": "special_chars", "messages": [{"role": "system", "content": TRICKY}, {"role": "user", "content": TRICKY},
                                           {"role": "assistant", "content": TRICKY}, {"role": "user", "content": "ok?"}],
     "add_generation_prompt": True},
    {"name": "empty_content", "messages": [{"role": "user", "content": ""}], "add_generation_prompt": True},
    {"name": "content_parts", "messages": [{"role": "user", "content": [{"type": "text", "text": "  Describe this  "},
                                                                        {"type": "image"}]}],
     "add_generation_prompt": True},
    {"name": "roles_not_alternating", "messages": [U1, U2], "add_generation_prompt": True},
    {"name": "thinking_off", "messages": [U1], "add_generation_prompt": True, "kwargs": {"enable_thinking": False}},
    {"name": "thinking_on", "messages": [U1], "add_generation_prompt": True, "kwargs": {"enable_thinking": True}},
    {"name": "reasoning_content", "messages": [U1, {"role": "assistant", "content": "Paris.",
                                                    "reasoning_content": "The user asks about France.\nEasy."}],
     "add_generation_prompt": False},
    {"name": "reasoning_history", "messages": [U1, {"role": "assistant", "content": "Paris.", "reasoning_content": "Easy."},
                                              U2], "add_generation_prompt": True},
    {"name": "think_in_content", "messages": [U1, {"role": "assistant",
                                                   "content": "<think>\nLet me recall.\n</think>\n\nParis."}],
     "add_generation_prompt": False},
    {"name": "tools_offered", "messages": [SYSTEM, {"role": "user", "content": "Weather in Paris?"}],
     "tools": [WEATHER_TOOL, TIME_TOOL], "add_generation_prompt": True},
    {"name": "tools_no_system", "messages": [{"role": "user", "content": "Weather in Paris?"}],
     "tools": [WEATHER_TOOL], "add_generation_prompt": True},
    {"name": "tool_call_round_trip", "tools": [WEATHER_TOOL, TIME_TOOL], "add_generation_prompt": True, "messages": [
        SYSTEM,
        {"role": "user", "content": "Weather and time in Paris?"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call00001", "type": "function",
             "function": {"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}}},
            {"id": "call00002", "type": "function", "function": {"name": "get_time", "arguments": {"tz": "Europe/Paris"}}},
        ]},
        {"role": "tool", "tool_call_id": "call00001", "content": "{\"temperature\": 18.5}"},
        {"role": "tool", "tool_call_id": "call00002", "content": "14:05"},
    ]},
    {"name": "tool_call_string_args", "tools": [WEATHER_TOOL], "add_generation_prompt": False, "messages": [
        {"role": "user", "content": "Weather in Zürich?"},
        {"role": "assistant", "content": "Let me check.", "tool_calls": [
            {"id": "abcdefghi", "type": "function",
             "function": {"name": "get_weather", "arguments": "{\"city\": \"Zürich\"}"}}]},
        {"role": "tool", "tool_call_id": "abcdefghi", "content": "rainy, 12 °C"},
        {"role": "assistant", "content": "It is rainy and 12 °C in Zürich."},
    ]},
    {"name": "multi_step_tools_thinking", "tools": [WEATHER_TOOL], "add_generation_prompt": True,
     "kwargs": {"enable_thinking": True}, "messages": [
        {"role": "user", "content": "Weather in Oslo?"},
        {"role": "assistant", "content": "", "reasoning_content": "Need the tool.", "tool_calls": [
            {"id": "oslo00001", "type": "function", "function": {"name": "get_weather", "arguments": {"city": "Oslo"}}}]},
        {"role": "tool", "tool_call_id": "oslo00001", "content": "<tool_response>-3</tool_response>"},
    ]},
    {"name": "system_only_gen", "messages": [SYSTEM], "add_generation_prompt": True},
]

# Hand-written templates, one per common family format, written from the formats' public
# descriptions (not copied): they exercise constructs the six shared templates do not.
EXTRA_TEMPLATES = {
    "chatml": {
        "bos_token": None, "eos_token": "<|im_end|>",
        "template": (
            "{% for message in messages %}"
            "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] | string + '<|im_end|>' + '\\n' }}"
            "{% endfor %}"
            "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"),
    },
    "llama2": {
        "bos_token": "<s>", "eos_token": "</s>",
        "template": """{%- if messages[0]['role'] == 'system' -%}
    {%- set sys_text = '<<SYS>>\\n' ~ messages[0]['content'] | trim ~ '\\n<</SYS>>\\n\\n' -%}
    {%- set turns = messages[1:] -%}
{%- else -%}
    {%- set sys_text = '' -%}
    {%- set turns = messages -%}
{%- endif -%}
{%- for message in turns -%}
    {%- if (message['role'] == 'user') != (loop.index0 is even) -%}
        {{- raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') -}}
    {%- endif -%}
    {%- if message['role'] == 'user' -%}
        {{- bos_token ~ '[INST] ' ~ (sys_text if loop.first else '') ~ message['content'] | trim ~ ' [/INST]' -}}
    {%- else -%}
        {{- ' ' ~ message['content'] | trim ~ ' ' ~ eos_token -}}
    {%- endif -%}
{%- endfor -%}
""",
    },
    "mistral_v3": {
        "bos_token": "<s>", "eos_token": "</s>",
        "template": """{%- set ns = namespace(system='', last_user=-1) -%}
{%- if messages and messages[0].role == 'system' -%}
    {%- set ns.system = messages[0].content -%}
    {%- set conv = messages[1:] -%}
{%- else -%}
    {%- set conv = messages -%}
{%- endif -%}
{%- for m in conv -%}
    {%- if m.role == 'user' -%}{%- set ns.last_user = loop.index0 -%}{%- endif -%}
{%- endfor -%}
{{- bos_token -}}
{%- for m in conv -%}
    {%- if m.role == 'user' -%}
        {%- if tools and loop.index0 == ns.last_user -%}
            {{- '[AVAILABLE_TOOLS] [' -}}
            {%- for t in tools -%}
                {{- t | tojson -}}{{- ', ' if not loop.last -}}
            {%- endfor -%}
            {{- '][/AVAILABLE_TOOLS]' -}}
        {%- endif -%}
        {%- if loop.index0 == ns.last_user and ns.system -%}
            {{- '[INST] ' + ns.system + '\\n\\n' + m.content + '[/INST]' -}}
        {%- else -%}
            {{- '[INST] ' + m.content + '[/INST]' -}}
        {%- endif -%}
    {%- elif m.role == 'assistant' and m.tool_calls is defined -%}
        {{- '[TOOL_CALLS] ' -}}
        {{- m.tool_calls | map(attribute='function') | list | tojson -}}
        {{- eos_token -}}
    {%- elif m.role == 'assistant' -%}
        {{- ' ' + m.content | trim + eos_token -}}
    {%- elif m.role == 'tool' -%}
        {{- '[TOOL_RESULTS] ' + {'call_id': m.tool_call_id, 'content': m.content} | tojson + '[/TOOL_RESULTS]' -}}
    {%- else -%}
        {{- raise_exception('Unexpected role: ' ~ m.role) -}}
    {%- endif -%}
{%- endfor -%}
""",
    },
    "phi3": {
        "bos_token": "<s>", "eos_token": "<|endoftext|>",
        "template": """{% for message in messages %}
{% if message['role'] in ['system', 'user', 'assistant'] %}
<|{{ message['role'] }}|>
{{ message['content'] }}<|end|>
{% endif %}
{% endfor %}
{% if add_generation_prompt %}
<|assistant|>
{% else %}
{{- eos_token -}}
{% endif %}""",
    },
    "deepseek_style": {
        "bos_token": "<｜begin▁of▁sentence｜>", "eos_token": "<｜end▁of▁sentence｜>",
        "template": """{%- set ns = namespace(system='', first=true) -%}
{%- for message in messages if message['role'] == 'system' -%}
    {%- set ns.system = ns.system ~ ('\\n\\n' if not ns.first else '') ~ message['content'] -%}
    {%- set ns.first = false -%}
{%- endfor -%}
{{ bos_token }}{{ ns.system }}
{%- for message in messages -%}
    {%- if message['role'] == 'user' -%}
        {{ '<｜User｜>' + message['content'] }}
    {%- elif message['role'] == 'assistant' -%}
        {%- set content = message['content'] -%}
        {%- if '</think>' in content -%}
            {%- set content = content.split('</think>')[-1] -%}
        {%- endif -%}
        {{ '<｜Assistant｜>' + content.lstrip() + '<｜end▁of▁sentence｜>' }}
    {%- elif message['role'] == 'tool' -%}
        {{ '<｜tool▁output▁begin｜>' + message['content'] + '<｜tool▁output▁end｜>' }}
    {%- endif -%}
{%- endfor -%}
{%- if add_generation_prompt -%}{{ '<｜Assistant｜><think>\\n' }}{%- endif -%}""",
    },
    "gemma2": {
        "bos_token": "<bos>", "eos_token": "<eos>",
        "template": """{{ bos_token }}
{%- if messages[0]['role'] == 'system' -%}
    {{- raise_exception('System role not supported') -}}
{%- endif -%}
{%- for message in messages -%}
    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}
        {{- raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') -}}
    {%- endif -%}
    {%- set role = 'model' if message['role'] == 'assistant' else message['role'] -%}
    {{- '<start_of_turn>' + role + '\\n' + message['content'] | trim + '<end_of_turn>\\n' -}}
{%- endfor -%}
{%- if add_generation_prompt -%}{{ '<start_of_turn>model\\n' }}{%- endif -%}""",
    },
    "llama31_tools": {
        "bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>",
        "template": """{{- bos_token }}
{%- set date_string = strftime_now('%d %b %Y') %}
{%- if messages[0]['role'] == 'system' %}
    {%- set system_message = messages[0]['content'] | trim %}
    {%- set messages = messages[1:] %}
{%- else %}
    {%- set system_message = '' %}
{%- endif %}
{{- '<|start_header_id|>system<|end_header_id|>\\n\\n' }}
{%- if tools is not none %}
    {{- 'Environment: ipython\\n' }}
{%- endif %}
{{- 'Cutting Knowledge Date: December 2023\\n' }}
{{- 'Today Date: ' + date_string + '\\n\\n' }}
{{- system_message }}
{{- '<|eot_id|>' }}
{%- for message in messages %}
    {%- if message.role == 'tool' or message.role == 'ipython' %}
        {{- '<|start_header_id|>ipython<|end_header_id|>\\n\\n' }}
        {%- if message.content is mapping or message.content is iterable and message.content is not string %}
            {{- message.content | tojson }}
        {%- else %}
            {{- message.content }}
        {%- endif %}
        {{- '<|eot_id|>' }}
    {%- elif message.tool_calls is defined %}
        {{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}
        {%- for call in message.tool_calls %}
            {%- set fn = call.function if call.function is defined else call %}
            {{- '{"name": "' + fn.name + '", "parameters": ' }}
            {{- fn.arguments | tojson if fn.arguments is mapping else fn.arguments }}
            {{- '}' }}
        {%- endfor %}
        {{- '<|eot_id|>' }}
    {%- else %}
        {%- if loop.last and tools is not none and message.role == 'user' %}
            {{- '<|start_header_id|>user<|end_header_id|>\\n\\n' }}
            {{- 'Given the following functions, reply with a JSON function call.\\n\\n' }}
            {%- for t in tools %}
                {{- t | tojson(indent=4) }}
                {{- '\\n\\n' }}
            {%- endfor %}
            {{- message.content | trim + '<|eot_id|>' }}
        {%- else %}
            {{- '<|start_header_id|>' + message.role + '<|end_header_id|>\\n\\n' + message.content | trim + '<|eot_id|>' }}
        {%- endif %}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}
{%- endif %}
""",
    },
    # Not a real model's template: it packs in constructs the others do not use.
    "constructs": {
        "bos_token": "<s>", "eos_token": "</s>",
        "template": """{#- macros with defaults, caller(), filter blocks, loop helpers -#}
{%- macro render(msg, prefix='> ', upper=false) -%}
{{ prefix }}{{ msg.role | upper if upper else msg.role | capitalize }}: {{ caller() if caller is defined else msg.content }}
{%- endmacro -%}
{%- set seen = namespace(roles=[], chars=0, last=none) -%}
{%- for m in messages -%}
    {%- set seen.roles = seen.roles + [m.role] -%}
    {%- if m.content is string -%}{%- set seen.chars = seen.chars + m.content | length -%}{%- endif -%}
    {%- set seen.last = m -%}
{%- endfor -%}
roles={{ seen.roles | unique | list | join(',') }} count={{ messages | length }} chars={{ seen.chars }}
last={{ seen.last.role }} first_user={{ (messages | selectattr('role', 'equalto', 'user') | first).content | default('-') }}
{% for m in messages -%}
{{ loop.index }}/{{ loop.length }} {{ loop.cycle('odd', 'even') }}{{ ' first' if loop.first }}{{ ' last' if loop.last }} prev={{ loop.previtem.role if loop.previtem is defined else '^' }}
{%- if m.content is string %}
{% call render(m, upper=loop.index is odd) %}{{ m.content[:12] | trim ~ ('...' if m.content | length > 12 else '') }}{% endcall %}
  words={{ m.content | wordcount }} rev={{ m.content[:5][::-1] | tojson }} {{ m.content.split()[:2] }}
{%- else %}
  parts: {% for p in m.content %}{{ p.type }}{{ ',' if not loop.last }}{% endfor %}
{%- endif %}
{%- if m.tool_calls is defined %}
  calls: {{ m.tool_calls | map(attribute='function.name') | join(' & ') }}
{%- for c in m.tool_calls %}
  {{ c.function.arguments | tojson(indent=2) if c.function.arguments is mapping else c.function.arguments }}
{%- endfor %}
{%- endif %}
{% else -%}
(no messages)
{% endfor -%}
{%- filter upper %}tools: {% if tools %}{{ tools | map(attribute='function') | map(attribute='name') | sort | join(', ') }}{% else %}none{% endif %}{% endfilter %}
{% set banner %}
  [{{ bos_token }}|{{ eos_token }}]  
{% endset -%}
banner={{ banner | trim }} {{ [1, 2.5, 'x', none, true, {'k': (1, 'y')}] }} {{ {'b': 1, 'a': [1, 2]} | dictsort }}
{%- with n = messages | length %}
math: {{ n * 2 + 1 }} {{ n / 2 }} {{ n // 2 }} {{ -n % 3 }} {{ 2 ** n }} {{ (n ~ '') * 2 }} {{ 10 / 4 }} {{ 1e3 }} {{ 0.1 + 0.2 }}
{%- endwith %}
{% for i in range(10) if i is odd %}{% if i > 7 %}{% break %}{% endif %}{% if i == 3 %}{% continue %}{% endif %}{{ i }}{% endfor %}
{{ 'enable_thinking=' ~ (enable_thinking if enable_thinking is defined else 'unset') }} gen={{ add_generation_prompt }}
{{ '%s has %d message(s)' % ('chat', messages | length) }} {{ '{} and {}'.format('a', 'b') }} {{ 'x,y,,z'.split(',') | reject('equalto', '') | list }}
{{ messages | map(attribute='role') | map('title') | list }} {{ 'Hello World'.replace('o', '0', 1).lower().startswith('hell') }}
{{- '\\n' -}}
{%- generation -%}end{%- endgeneration -%}
""",
    },
}


def load_text(path):
    if os.path.exists(path):
        return open(path, "rb").read()
    if os.path.exists(path + ".xz"):
        return lzma.open(path + ".xz").read()
    return None


def make_tokenizer(tokenizer_json, config):
    tmp = tempfile.mkdtemp()
    try:
        open(os.path.join(tmp, "tokenizer.json"), "wb").write(tokenizer_json)
        json.dump(config, open(os.path.join(tmp, "tokenizer_config.json"), "w"), ensure_ascii=False)
        return PreTrainedTokenizerFast.from_pretrained(tmp)
    finally:
        shutil.rmtree(tmp)


def render_all(tok):
    cases = []
    for conv in CONVERSATIONS:
        case = {k: conv[k] for k in ("name", "messages") if k in conv}
        case["tools"] = conv.get("tools")
        case["add_generation_prompt"] = conv["add_generation_prompt"]
        case["kwargs"] = conv.get("kwargs", {})
        try:
            case["expected"] = tok.apply_chat_template(
                conv["messages"], tools=conv.get("tools"), add_generation_prompt=conv["add_generation_prompt"],
                tokenize=False, **conv.get("kwargs", {}))
        except Exception as e:  # the template refused (raise_exception) or failed on this input
            case["error"] = str(e)
        cases.append(case)
    return cases


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser()
    ap.add_argument("--shared", default=os.path.join(here, "..", "..", "shared"))
    ap.add_argument("--out", default=os.path.join(here, "..", "tests", "data", "chat_template"))
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    tok_dir = os.path.join(args.shared, "tokenizers")
    meta = {"transformers": transformers.__version__, "now": NOW}
    gpt2_json = load_text(os.path.join(tok_dir, "gpt2", "tokenizer.json"))

    def write(name, source, tok, template):
        special = tok.special_tokens_map
        golden = {"name": name, "source": source, **meta, "special_tokens": special, "template": template,
                  "cases": render_all(tok)}
        with open(os.path.join(args.out, name + ".json"), "w", encoding="utf-8") as f:
            json.dump(golden, f, ensure_ascii=False, indent=1)
            f.write("\n")
        n_err = sum("error" in c for c in golden["cases"])
        print(f"{name}: {len(golden['cases'])} cases ({n_err} errors)")

    for name in SHARED_MODELS:
        config = json.loads(load_text(os.path.join(tok_dir, name, "tokenizer_config.json")))
        if not config.get("chat_template"):
            print(f"{name}: no chat template, skipped")
            continue
        tok = make_tokenizer(load_text(os.path.join(tok_dir, name, "tokenizer.json")), config)
        write(name, f"shared/tokenizers/{name}/tokenizer_config.json", tok, config["chat_template"])

    for name, spec in EXTRA_TEMPLATES.items():
        config = {"tokenizer_class": "PreTrainedTokenizerFast", "chat_template": spec["template"],
                  "bos_token": spec["bos_token"], "eos_token": spec["eos_token"]}
        tok = make_tokenizer(gpt2_json, config)
        write(name, "tools/make_chat_template_goldens.py", tok, spec["template"])


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Golden token ids from HuggingFace `tokenizers` for nibble's C++ tokenizer tests.

What it writes, under tests/data/tokenizer/:
  tiny_*/tokenizer.json      five small tokenizers trained here with HF `tokenizers`
                             (byte-level GPT-2 style, Llama-3-regex style, SentencePiece style
                             with byte_fallback, one with "##" prefix / "</w>" suffix, and
                             Metaspace with prepend_scheme "first")
  goldens_<name>.json        for the 6 real tokenizers (../shared/tokenizers) and the 5 tiny
                             ones: for each string of CORPUS the ids with add_special_tokens
                             False and True, HF's decode of the latter with
                             skip_special_tokens False and True; plus invalid UTF-8 inputs (as
                             hex) with the ids of HF encode(bytes.decode("utf-8", "replace")).
  goldens_components.json    single normalizers / pre-tokenizers / decoders in every option we
                             implement, with HF's output on a few inputs.

Re-run (CPU only, ~1 minute):
  pip install tokenizers==0.23.3
  python3 tools/make_tokenizer_goldens.py            # from the repository root
The real tokenizers are read from ../shared/tokenizers/<name>/tokenizer.json.xz (decompressed
in memory); --shared DIR overrides that folder.
"""
import argparse
import json
import lzma
import os
import sys

import tokenizers
from tokenizers import (AddedToken, Regex, Tokenizer, decoders, models, normalizers,
                        pre_tokenizers, processors, trainers)

REAL = ["llama3", "qwen3", "qwen2_5", "gemma3", "gpt2", "mistral_nemo"]
LLAMA3_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"
                r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")

CORPUS = [
    # empty and whitespace
    "", " ", "  ", "   ", "\t", "\n", "\n\n", "\n\n\n\n", "\r\n", "\r\n\r\n", " \n ", "\t\t\tx",
    "a  b", "a   b", "a\tb", "a \t b", "  leading", "trailing  ", "  both  ", " \n\n  \t x \n",
    "x\u00a0y", "x \u00a0y", "x \x85y", "x \u2028y", "x\u2029y", "x \u200by", "x \u180ey",
    "x \u3000 y", "x\u2009y\u202fz", "\ufeffBOM", "x \x1cy", "\x0b\x0c", "\x00", "\x01\x02\x7f",
    # English and contractions
    "Hello world", "Hello, world!", "hello world", "HELLO WORLD", "The quick brown fox jumps over the lazy dog.",
    "I'm here", "don't", "we'LL see", "He'S", "You're, they've, I'd, she'll", "'s", "'", "''", "'''s",
    "it\u2019s", "rock 'n' roll", "'ſ 'K 'S", "O'Neil's", "y'all'd've",
    "Mr. Smith went to Washington, D.C., on Jan. 3rd.",
    # digits and numbers
    "0", "12", "123", "1234", "1234567890", "3.14159265358979", "1,000,000", "-42", "+7 (555) 010-9999",
    "10^10", "2024-01-31T12:34:56Z", "v1.2.3", "0x7fffffff", "1e-9", "٣٤٥", "१२३", "①②③", "ⅫⅣ", "½ ¾",
    "𝟘𝟙𝟚", "12abc34", "abc123def", "99 bottles", "1 2 3 4 5 6 7 8 9 10",
    # scripts
    "你好，世界！", "我爱北京天安门。", "日本語のテキストです。", "カタカナとひらがな", "ｶﾀｶﾅ", "한국어 텍스트입니다",
    "안녕하세요", "مرحبا بالعالم", "السلام عليكم ورحمة الله", "שָׁלוֹם עוֹלָם", "שלום", "नमस्ते दुनिया",
    "हिन्दी भाषा", "สวัสดีชาวโลก", "ภาษาไทย", "Привет, мир!", "ЁЛКА ёлка", "Γειά σου Κόσμε", "ΟΔΥΣΣΕΥΣ ὀδυσσεύς",
    "გამარჯობა", "Բարեւ", "வணக்கம்", "হ্যালো", "ሰላም", "བཀྲ་ཤིས", "ᠮᠣᠩᠭᠣᠯ", "សួស្តី", "ສະບາຍດີ", "မင်္ဂလာပါ",
    "ආයුබෝවන්", "Tiếng Việt có dấu", "Ngày mai trời đẹp", "Zürich Straße Größe", "ÆØÅ æøå", "İstanbul ılık",
    "Dž dž ǅ", "ﬁne ﬂow ﬀ", "Å Ω K", "ＡＢＣ１２３", "x² H₂O", "ℌℑℜ", "㍿㌀", "\u1100\u1161\u11a8",
    "e\u0301", "é", "a\u0308\u0301", "Z̤͔ͧ̑̓ä͖̭̈̇lͮ̒ͫǧ̗͚̚o̙̔ͮ̇͐̇", "\u0915\u094d\u0937", "𐌰𐌱𐌲", "𒀀𒀁",
    "𝔘𝔫𝔦𝔠𝔬𝔡𝔢", "\ufffd", "\ue000\uf8ff", "\U0010fffd",
    # emoji
    "👍", "👍🏽", "👨‍👩‍👧‍👦", "🏳️‍🌈", "🇯🇵🇺🇸", "1️⃣", "❤️", "I ❤️ NY", "😀😃😄😁", "🧑🏿‍🚀 astronaut",
    "👩🏻‍❤️‍💋‍👨🏼", "a😀b", "🤷‍♀️🤷‍♂️", "☃", "⚡️⚡",
    # special tokens written in the text
    "<|begin_of_text|>", "<|begin_of_text|>Hello", "Hello<|eot_id|>", "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>",
    "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n", "<|endoftext|>", "a<|endoftext|>b", "<|endoftext|><|endoftext|>",
    "<start_of_turn>user\nHi<end_of_turn>", "<bos>", "<s>", "</s>", "<s>[INST] hi [/INST]", "<unk>", "<pad>", "<mask>",
    "x <mask> y", "x  <mask>  y", "[SEP]", "a [SEP]  b", "<|im_start", "<<|im_start|>>", "<|im_end|><|im_start|>",
    "<tool_call>{\"a\":1}</tool_call>", "<|tool|>", "a<|tool|>b", "cat", "a cat", "cats", "bobcat", "cat_dog", "(cat)",
    "Foo bar FOO", "<|begin_of_text|> leading space", "  <s>  spaced  </s>  ",
    # long words, code, urls, data
    "supercalifragilisticexpialidocious", "Pneumonoultramicroscopicsilicovolcanoconiosis",
    "Donaudampfschifffahrtsgesellschaftskapitänswitwe", "a" * 300, "ab" * 200, "😀" * 50, "1" * 100, " " * 100,
    "\n" * 40, "x" + " " * 17 + "y", "!" * 30, "." * 30, "-" * 40, "=" * 40, "_" * 20,
    "https://www.example.com/path/to/page?query=1&lang=en#section",
    "mailto:someone@example.org", "C:\\Program Files\\nibble\\bin",
    "def f(x):\n    return x * 2  # double\n",
    "int main() {\n\tprintf(\"%d\\n\", 42);\n\treturn 0;\n}",
    "for (auto& [k, v] : m) { std::cout << k << v; }",
    "{\"key\": [1, 2, {\"nested\": null}], \"b\": true}", "<div class=\"x\"><p>Hi</p></div>",
    "\\frac{a}{b} + \\sum_{i=0}^{n} x_i^2", "SELECT * FROM t WHERE a = 'b';", "$ ls -la | grep '^d' > out.txt",
    "aGVsbG8gd29ybGQ=Zm9vYmFyYmF6cXV4", "deadbeefcafebabe0123456789abcdef", "camelCaseIdentifier snake_case_name",
    "ALLCAPS and MiXeD cAsE", "HTTPServer XMLHttpRequest iPhone", "tab\tseparated\tvalues\n1\t2\t3",
    "line one\nline two\r\nline three\rend", "    four spaces", "\tTab indent", "trailing space ",
    # mixed paragraphs
    "Janet\u2019s ducks lay 16 eggs per day. She eats three for breakfast every morning and bakes muffins for her friends every day with four.",
    "The price is $12.50 (≈ €11.40), i.e. 15% off!", "Email: test@example.com; Phone: 555-1234.",
    "Les élèves étudient à l'école — c'est très intéressant.", "¿Dónde está la biblioteca? ¡Aquí!",
    "Ça va? Oui, ça va bien. Œuvre, naïve, façade.", "日本では、2024年に3,000人が参加しました。",
    "混合 text 与 English words 和 数字 123", "Русский text with English и цифры 42.",
    "עברית and English mixed מילים", "العربية 123 English", "emoji 🎉 in 🎊 the 🥳 middle",
    "   multiple   spaces   between   words   ", "a\n\nb\n\n\nc", "end with newline\n", "\n start with newline",
    "question?answer!exclaim...ellipsis", "«quoted» „German“ “curly” ‘single’", "dash–en—em―bar",
    "a\u00adb soft hyphen", "zero\u200dwidth\u200cjoiners", "ǈ ǋ ǲ titlecase digraphs", "ﬃ ﬄ ligatures",
    "Ⅰ Ⅱ Ⅲ roman", "㈠㈡ parenthesized", "¹²³ superscripts", "µ vs μ", "ſ long s", "ß ẞ sharp s",
    "ΣΑΣ σας final sigma ς", "İi Iı turkish", "Ǆ ǅ ǆ", "ﾊﾝｶｸ half-width", "　full width space　",
]

INVALID_UTF8 = [
    b"\xff", b"\xc3", b"abc\x80def", b"\xe2\x82", b"\xe2\x82x", b"\xf0\x9f\x98", b"\xf0\x9f\x98\x80\x80",
    b"\xed\xa0\x80", b"\xc0\xaf", b"\xf5\x80\x80\x80", b"\xf4\x90\x80\x80", b"Hello \xfe\xff world",
    b"\xe0\x80\x80", b"caf\xe9", b"\x80\x80\x80", b"<|endoftext|>\xff<|im_start|>",
]


def train_corpus():
    path = os.path.join(args.shared, "data", "gsm8k", "test.jsonl")
    lines = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            d = json.loads(line)
            lines += [d["question"], d["answer"]]
    return lines + CORPUS * 3


def train_tiny():
    text = train_corpus()
    byte_alpha = pre_tokenizers.ByteLevel.alphabet()
    out = {}

    # 1. GPT-2 style byte-level, with NFKC + Lowercase, a template post-processor and added
    #    tokens exercising lstrip / rstrip / single_word / normalized.
    t = Tokenizer(models.BPE())
    t.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    t.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True, use_regex=True)
    t.decoder = decoders.ByteLevel()
    t.train_from_iterator(text, trainers.BpeTrainer(vocab_size=1500, initial_alphabet=byte_alpha,
                                                    special_tokens=["<s>", "</s>"], show_progress=False))
    t.add_special_tokens([AddedToken("<mask>", lstrip=True, special=True, normalized=False),
                          AddedToken("[SEP]", rstrip=True, special=True, normalized=False)])
    t.add_tokens([AddedToken("cat", single_word=True, normalized=True),
                  AddedToken("Foo", normalized=True),
                  AddedToken("<|tool|>", normalized=False)])
    t.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", special_tokens=[("<s>", t.token_to_id("<s>")), ("</s>", t.token_to_id("</s>"))])
    out["tiny_bytelevel"] = t

    # 2. Llama 3 style: Split(regex) + Digits + ByteLevel without regex, ignore_merges, NFC.
    t = Tokenizer(models.BPE(ignore_merges=True))
    t.normalizer = normalizers.NFC()
    t.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_REGEX), behavior="isolated", invert=False),
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    t.decoder = decoders.ByteLevel()
    t.train_from_iterator(text, trainers.BpeTrainer(vocab_size=2000, initial_alphabet=byte_alpha,
                                                    special_tokens=["<|begin_of_text|>", "<|eot_id|>"],
                                                    show_progress=False))
    t.post_processor = processors.Sequence([
        processors.ByteLevel(trim_offsets=False),
        processors.TemplateProcessing(single="<|begin_of_text|> $A",
                                      special_tokens=[("<|begin_of_text|>", t.token_to_id("<|begin_of_text|>"))])])
    out["tiny_llama3"] = t

    # 3. SentencePiece style (Llama 2 / Gemma): Prepend + Replace normalizer, no pre-tokenizer,
    #    byte_fallback, fused unk, <0xHH> tokens in the model vocab.
    byte_toks = [f"<0x{b:02X}>" for b in range(256)]
    t = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    t.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    t.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(),
                                   decoders.Strip(content=" ", left=1, right=0)])
    t.train_from_iterator(text, trainers.BpeTrainer(vocab_size=1200, special_tokens=["<unk>", "<s>", "</s>"] + byte_toks,
                                                    limit_alphabet=200, show_progress=False))
    t.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", t.token_to_id("<s>"))])
    d = json.loads(t.to_str())
    # Byte tokens are plain vocab entries in SentencePiece models, not added tokens.
    d["added_tokens"] = [a for a in d["added_tokens"] if a["content"] not in byte_toks]
    out["tiny_spm"] = Tokenizer.from_str(json.dumps(d))

    # 4. Suffix/prefix BPE: "##" continuing_subword_prefix, "</w>" end_of_word_suffix, unk
    #    without fusing, NFD + StripAccents + Lowercase, Whitespace pre-tokenizer.
    t = Tokenizer(models.BPE(unk_token="[UNK]", continuing_subword_prefix="##", end_of_word_suffix="</w>"))
    t.normalizer = normalizers.Sequence([normalizers.NFD(), normalizers.StripAccents(), normalizers.Lowercase()])
    t.pre_tokenizer = pre_tokenizers.Whitespace()
    t.decoder = decoders.BPEDecoder(suffix="</w>")
    t.train_from_iterator(text[:2000], trainers.BpeTrainer(vocab_size=800, special_tokens=["[UNK]", "[CLS]", "[SEP]"],
                                                           continuing_subword_prefix="##", end_of_word_suffix="</w>",
                                                           limit_alphabet=60, show_progress=False))
    t.post_processor = processors.BertProcessing(("[SEP]", t.token_to_id("[SEP]")), ("[CLS]", t.token_to_id("[CLS]")))
    out["tiny_suffix"] = t

    # 5. Metaspace with prepend_scheme "first" (only the piece at offset 0 gets the prefix, not
    #    the pieces after special tokens), regex Replace normalizer, Digits after Metaspace.
    t = Tokenizer(models.BPE(unk_token="<unk>"))
    t.normalizer = normalizers.Replace(Regex(r"[\t ]+"), " ")
    t.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=True),
        pre_tokenizers.Digits(individual_digits=False)])
    t.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="first")
    t.train_from_iterator(text, trainers.BpeTrainer(vocab_size=1000, special_tokens=["<unk>", "<s>", "</s>"],
                                                    limit_alphabet=300, show_progress=False))
    t.add_tokens([AddedToken("<|tool|>", normalized=False)])
    out["tiny_metaspace"] = t
    return out


def goldens(tok):
    cases = []
    for s in CORPUS:
        ids = tok.encode(s, add_special_tokens=False).ids
        ids_sp = tok.encode(s, add_special_tokens=True).ids
        cases.append({"text": s, "ids": ids, "ids_special": ids_sp,
                      "decoded": tok.decode(ids_sp, skip_special_tokens=False),
                      "decoded_skip": tok.decode(ids_sp, skip_special_tokens=True)})
    bad = [{"hex": b.hex(), "ids": tok.encode(b.decode("utf-8", "replace"), add_special_tokens=False).ids}
           for b in INVALID_UTF8]
    return {"tokenizers_version": tokenizers.__version__, "cases": cases, "invalid_utf8": bad}


def component_goldens():
    """Single components in each option, with HF's output, for options no full tokenizer uses."""
    inputs = ["Hello, world! 123 4567", "  spaced   out  ", "a.b,c;d", "ﬁne Ⅻ ＡＢ e\u0301", "İSTANBUL ΣΑΣ",
              "x\u3000y\tz\n", "", "▁already▁", "can't stop-won't stop", "日本語 テキスト", "x 12 y"]
    out = []

    def pre(p):
        t = Tokenizer(models.BPE())
        t.pre_tokenizer = p
        cfg = json.loads(t.to_str())["pre_tokenizer"]
        out.append({"kind": "pre_tokenizer", "config": cfg,
                    "cases": [{"input": s, "output": [w for w, _ in p.pre_tokenize_str(s)]} for s in inputs]})

    def norm(n):
        t = Tokenizer(models.BPE())
        t.normalizer = n
        cfg = json.loads(t.to_str())["normalizer"]
        out.append({"kind": "normalizer", "config": cfg,
                    "cases": [{"input": s, "output": n.normalize_str(s)} for s in inputs]})

    for b in ["removed", "isolated", "merged_with_previous", "merged_with_next", "contiguous"]:
        for inv in [False, True]:
            pre(pre_tokenizers.Split(Regex(r"\s+|[,.;]"), behavior=b, invert=inv))
            pre(pre_tokenizers.Split(" ", behavior=b, invert=inv))
        pre(pre_tokenizers.Punctuation(behavior=b))
    for scheme in ["always", "first", "never"]:
        for split in [True, False]:
            pre(pre_tokenizers.Metaspace(replacement="▁", prepend_scheme=scheme, split=split))
    for ind in [True, False]:
        pre(pre_tokenizers.Digits(individual_digits=ind))
    for aps in [True, False]:
        for ur in [True, False]:
            pre(pre_tokenizers.ByteLevel(add_prefix_space=aps, use_regex=ur))
    pre(pre_tokenizers.Whitespace())
    pre(pre_tokenizers.WhitespaceSplit())
    pre(pre_tokenizers.BertPreTokenizer())
    pre(pre_tokenizers.CharDelimiterSplit("-"))
    pre(pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Digits(individual_digits=False)]))

    for n in [normalizers.NFC(), normalizers.NFD(), normalizers.NFKC(), normalizers.NFKD(), normalizers.Lowercase(),
              normalizers.Strip(left=True, right=True), normalizers.Strip(left=True, right=False),
              normalizers.Strip(left=False, right=True), normalizers.Prepend("▁"), normalizers.Replace(" ", "▁"),
              normalizers.Replace(Regex(r"\s+"), " "), normalizers.Replace(Regex(r"\d"), "#"),
              normalizers.Sequence([normalizers.NFD(), normalizers.StripAccents()])]:
        norm(n)

    token_lists = [["▁Hello", "▁wor", "ld", "<0x21>", "<0xE2>", "<0x82>", "<0xAC>", "▁x"],
                   ["<0xE2>", "<0x82>", "▁a", "<0xFF>", "<0x41>"], ["▁▁a▁", "b▁", "▁"], ["ĠHello", "Ġworld", "Ċ", "é", "<|x|>"],
                   ["Ã", "©", "Ġ", "ðŁ", "ĺ", "Ģ"], ["hel", "lo</w>", "wor", "ld</w>"], ["  a  ", " b", "c  "], []]
    for d in [decoders.ByteLevel(), decoders.Metaspace(replacement="▁", prepend_scheme="always"),
              decoders.Metaspace(replacement="▁", prepend_scheme="never"), decoders.Replace("▁", " "),
              decoders.Replace(Regex("[0-9]+"), "#"), decoders.ByteFallback(), decoders.Fuse(),
              decoders.Strip(content=" ", left=1, right=1), decoders.Strip(content=" ", left=2, right=0),
              decoders.BPEDecoder(suffix="</w>"),
              decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(),
                                 decoders.Strip(content=" ", left=1, right=0)])]:
        t = Tokenizer(models.BPE())
        t.decoder = d
        cfg = json.loads(t.to_str())["decoder"]
        out.append({"kind": "decoder", "config": cfg,
                    "cases": [{"input": tl, "output": d.decode(tl)} for tl in token_lists]})
    return out


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    dst = os.path.join(here, "..", "tests", "data", "tokenizer")
    os.makedirs(dst, exist_ok=True)
    toks = {}
    for name in REAL:
        with lzma.open(os.path.join(args.shared, "tokenizers", name, "tokenizer.json.xz"), "rt", encoding="utf-8") as f:
            toks[name] = Tokenizer.from_str(f.read())
    for name, t in train_tiny().items():
        os.makedirs(os.path.join(dst, name), exist_ok=True)
        t.save(os.path.join(dst, name, "tokenizer.json"), pretty=False)
        toks[name] = Tokenizer.from_file(os.path.join(dst, name, "tokenizer.json"))
    for name, t in toks.items():
        with open(os.path.join(dst, f"goldens_{name}.json"), "w", encoding="utf-8") as f:
            json.dump(goldens(t), f, ensure_ascii=False, separators=(",", ":"))
        print(name, "vocab", t.get_vocab_size(), file=sys.stderr)
    with open(os.path.join(dst, "goldens_components.json"), "w", encoding="utf-8") as f:
        json.dump(component_goldens(), f, ensure_ascii=False, separators=(",", ":"))
    print(len(CORPUS), "strings", file=sys.stderr)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shared", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared"))
    args = ap.parse_args()
    main()

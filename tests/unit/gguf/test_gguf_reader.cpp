// GgufFile on files written by gguf-py's GGUFWriter: metadata of every type, tensor infos in
// both dim orders, tensor bytes, and dequantized tensors, all against the JSON the writer
// script stored next to each file (tools/make_gguf_goldens.py).
#include <cstdio>

#include <nlohmann/json.hpp>

#include "gguf_test_util.h"
#include "io/gguf.h"

namespace nibble {
namespace {

using nlohmann::json;
using test::gguf_data;
using test::read_bytes;

json load_json(const std::string& file) { return json::parse(read_bytes(gguf_data(file))); }

void expect_value(const GgufValue& v, const json& want, const std::string& where) {
  SCOPED_TRACE(where);
  ASSERT_EQ(gguf_type_name(v.type), want["type"].get<std::string>());
  switch (v.type) {
    case GgufValueType::kArray: {
      ASSERT_EQ(gguf_type_name(v.array.elem_type), want["elem_type"].get<std::string>());
      const json& items = want["items"];
      ASSERT_EQ(v.array.size, items.size());
      for (size_t i = 0; i < items.size(); ++i)
        expect_value(v.array.at(i), items[i], where + "[" + std::to_string(i) + "]");
      break;
    }
    case GgufValueType::kString: EXPECT_EQ(v.str, want["value"].get<std::string>()); break;
    case GgufValueType::kBool: EXPECT_EQ(v.as_bool(), want["value"].get<bool>()); break;
    case GgufValueType::kFloat32: EXPECT_EQ(v.bits, want["bits"].get<uint64_t>()); break;
    case GgufValueType::kFloat64: EXPECT_EQ(v.bits, want["bits"].get<uint64_t>()); break;
    case GgufValueType::kUint64: EXPECT_EQ(v.as_u64(), want["value"].get<uint64_t>()); break;
    default: EXPECT_EQ(v.as_i64(), want["value"].get<int64_t>()); break;
  }
}

void check_file_against_json(const std::string& stem) {
  SCOPED_TRACE(stem);
  const json want = load_json(stem + ".json");
  auto r = GgufFile::open(gguf_data(stem + ".gguf"));
  ASSERT_TRUE(r) << r.status().message();
  const GgufFile& f = r.value();
  EXPECT_EQ(f.version(), want["version"].get<uint32_t>());
  EXPECT_EQ(f.alignment(), want["alignment"].get<uint32_t>());
  EXPECT_EQ(f.data_offset(), want["data_offset"].get<uint64_t>());

  // Metadata, in file order.
  const json& meta = want["metadata"];
  ASSERT_EQ(f.metadata().size(), meta.size());
  for (size_t i = 0; i < meta.size(); ++i) {
    const std::string key = meta[i]["key"];
    EXPECT_EQ(f.metadata()[i].key, key);
    const GgufValue* v = f.find(key);
    ASSERT_NE(v, nullptr) << key;
    expect_value(*v, meta[i], key);
  }

  // Tensors, in file order.
  const json& tensors = want["tensors"];
  ASSERT_EQ(f.tensors().size(), tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i) {
    const json& w = tensors[i];
    const std::string name = w["name"];
    SCOPED_TRACE(name);
    EXPECT_EQ(f.tensors()[i].name, name);
    auto tr = f.tensor(name);
    ASSERT_TRUE(tr) << tr.status().message();
    const GgufTensor& t = *tr.value();
    EXPECT_EQ(ggml_type_name(t.type), w["type"].get<std::string>());
    EXPECT_EQ(t.shape, w["shape"].get<std::vector<int64_t>>());
    EXPECT_EQ(t.ne, w["ne"].get<std::vector<int64_t>>());
    EXPECT_EQ(t.cols, t.ne[0]);
    EXPECT_EQ(t.rows * t.cols, t.n_elements);
    EXPECT_EQ(t.nbytes, w["nbytes"].get<uint64_t>());
    EXPECT_EQ(t.nbytes, t.row_bytes * static_cast<uint64_t>(t.rows));
    EXPECT_EQ(t.offset % f.alignment(), 0u);

    // Raw bytes straight from the mapping.
    const std::string hex = w["hex"];
    ASSERT_EQ(hex.size(), 2 * t.nbytes);
    for (size_t b = 0; b < t.nbytes; ++b)
      ASSERT_EQ(t.data[b], std::stoul(hex.substr(2 * b, 2), nullptr, 16)) << "byte " << b;

    // Dequantized, as gguf-py does it.
    if (w.contains("f32_bits")) {
      const auto bits = w["f32_bits"].get<std::vector<uint32_t>>();
      ASSERT_EQ(bits.size(), static_cast<size_t>(t.n_elements));
      std::vector<float> out(bits.size());
      ASSERT_TRUE(dequantize_to_f32(t, out.data()));
      for (size_t k = 0; k < out.size(); ++k) ASSERT_TRUE(test::same_bits(out[k], bits[k], k));
    }
  }
}

TEST(GgufReader, AllValueTypesAndTensors) { check_file_against_json("all_types"); }
TEST(GgufReader, CustomAlignment64) { check_file_against_json("aligned64"); }
TEST(GgufReader, Version2) { check_file_against_json("small_v2"); }

TEST(GgufReader, FromMemoryMatchesOpen) {
  const std::vector<uint8_t> bytes = read_bytes(gguf_data("all_types.gguf"));
  auto r = GgufFile::from_memory(bytes.data(), bytes.size(), "mem.gguf");
  ASSERT_TRUE(r) << r.status().message();
  EXPECT_EQ(r->name(), "mem.gguf");
  EXPECT_EQ(r->tensors().size(), 11u);
  const GgufTensor* t = r->find_tensor("blk.0.q6_k");
  ASSERT_NE(t, nullptr);
  EXPECT_GE(t->data, bytes.data());
  EXPECT_LE(t->data + t->nbytes, bytes.data() + bytes.size());  // a view, not a copy
}

TEST(GgufReader, TypedGetters) {
  auto r = GgufFile::open(gguf_data("all_types.gguf"));
  ASSERT_TRUE(r) << r.status().message();
  const GgufFile& f = r.value();
  EXPECT_EQ(f.get_u8("test.u8").value(), 255);
  EXPECT_EQ(f.get_i8("test.i8").value(), -128);
  EXPECT_EQ(f.get_u16("test.u16").value(), 65535);
  EXPECT_EQ(f.get_i16("test.i16").value(), -32768);
  EXPECT_EQ(f.get_u32("test.u32").value(), 4294967295u);
  EXPECT_EQ(f.get_i32("test.i32").value(), INT32_MIN);
  EXPECT_EQ(f.get_u64("test.u64").value(), UINT64_MAX);
  EXPECT_EQ(f.get_i64("test.i64").value(), INT64_MIN);
  EXPECT_EQ(f.get_f32("test.f32").value(), 3.14159265f);
  EXPECT_EQ(f.get_f64("test.f64").value(), 2.718281828459045);
  EXPECT_TRUE(f.get_bool("test.bool_true").value());
  EXPECT_FALSE(f.get_bool("test.bool_false").value());
  EXPECT_EQ(f.get_string("test.string").value(), "hello, GGUF");
  EXPECT_EQ(f.get_string("test.string_empty").value(), "");
  EXPECT_EQ(f.get_string("general.architecture").value(), "nibbletest");

  // Lenient numeric lookups.
  EXPECT_EQ(f.get_int("test.u8").value(), 255);
  EXPECT_EQ(f.get_int("test.i16").value(), -32768);
  EXPECT_EQ(f.get_int("test.u32").value(), 4294967295);
  EXPECT_FALSE(f.get_int("test.u64"));  // 2^64-1 does not fit int64
  EXPECT_FLOAT_EQ(static_cast<float>(f.get_float("test.f32").value()), 3.14159265f);
  EXPECT_FALSE(f.get_float("test.u8"));

  // Arrays.
  EXPECT_EQ(f.get_int_array("test.arr_i16").value(), (std::vector<int64_t>{-3, 0, 32767}));
  EXPECT_EQ(f.get_int_array("test.arr_u8").value(), (std::vector<int64_t>{0, 1, 254, 255}));
  EXPECT_FALSE(f.get_int_array("test.arr_u64"));  // 2^64-1 again
  auto scores = f.get_float_array("tokenizer.ggml.scores");
  ASSERT_TRUE(scores);
  ASSERT_EQ(scores->size(), 40u);
  EXPECT_EQ((*scores)[5], -1.25f);
  auto strs = f.get_string_array("test.arr_str");
  ASSERT_TRUE(strs);
  EXPECT_EQ(strs.value(), (std::vector<std::string_view>{"a", "", "<|im_start|>", "ĠThe"}));
  auto nested = f.get_array("test.arr_nested", GgufValueType::kArray);
  ASSERT_TRUE(nested);
  ASSERT_EQ(nested.value()->size, 3u);
  EXPECT_EQ(nested.value()->arrays[2].at(1).as_i64(), 6);

  const GgufValue* lng = f.find("test.arr_long");
  ASSERT_NE(lng, nullptr);
  EXPECT_EQ(gguf_value_to_string(*lng, 3), "[0, 1, 2, ... (1000 items)]");
  EXPECT_EQ(gguf_value_to_string(*f.find("test.string_utf8")), "\"ünïcødé ✓ \\\"quoted\\\"\\nnewline\"");
  // Cut to 4 bytes, but not inside the 2-byte 'ï' that starts at byte 3.
  const GgufValue* utf8 = f.find("test.string_utf8");
  EXPECT_EQ(gguf_value_to_string(*utf8, 8, 4), fmt::format("\"ün\"... ({} bytes)", utf8->str.size()));
}

TEST(GgufReader, LookupErrorsNameFileKeyAndTypes) {
  auto r = GgufFile::open(gguf_data("all_types.gguf"));
  ASSERT_TRUE(r);
  const GgufFile& f = r.value();
  auto e = f.get_u32("test.u8");
  ASSERT_FALSE(e);
  EXPECT_EQ(e.status().code(), StatusCode::kInvalidArgument);
  const std::string& m = e.status().message();
  EXPECT_NE(m.find("all_types.gguf"), std::string::npos) << m;
  EXPECT_NE(m.find("'test.u8'"), std::string::npos) << m;
  EXPECT_NE(m.find("expected uint32, found uint8"), std::string::npos) << m;

  auto missing = f.get_string("no.such.key");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("'no.such.key'"), std::string::npos);
  EXPECT_FALSE(f.has("no.such.key"));

  auto arr = f.get_array("test.arr_i32", GgufValueType::kString);
  ASSERT_FALSE(arr);
  EXPECT_NE(arr.status().message().find("expected array of string, found array of int32"), std::string::npos)
      << arr.status().message();

  auto t = f.tensor("no.such.tensor");
  ASSERT_FALSE(t);
  EXPECT_EQ(t.status().code(), StatusCode::kNotFound);
  EXPECT_NE(t.status().message().find("'no.such.tensor'"), std::string::npos);
}

TEST(GgufReader, ShapeOrders) {
  auto r = GgufFile::open(gguf_data("all_types.gguf"));
  ASSERT_TRUE(r);
  const GgufTensor* t = r->find_tensor("w.f32_4d");  // numpy shape (2, 3, 1, 4)
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->shape, (std::vector<int64_t>{2, 3, 1, 4}));
  EXPECT_EQ(t->ne, (std::vector<int64_t>{4, 1, 3, 2}));
  EXPECT_EQ(t->cols, 4);
  EXPECT_EQ(t->rows, 6);
  EXPECT_EQ(t->shape_str(), "[2, 3, 1, 4] F32");

  GgufTensor fake = *t;  // same bytes, claimed as a type with no dequantizer
  fake.type = GgmlType::TQ2_0;
  std::vector<float> out(64);
  Status s = dequantize_to_f32(fake, out.data());
  EXPECT_EQ(s.code(), StatusCode::kUnsupported);
  EXPECT_NE(s.message().find("tensor 'w.f32_4d'"), std::string::npos) << s.message();
}

TEST(GgufDumpCommand, PrintsMetadataAndTensors) {
  const std::string cmd = std::string(NIBBLE_BINARY) + " gguf-dump " + gguf_data("all_types.gguf") + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string out;
  char buf[4096];
  while (size_t n = fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  EXPECT_EQ(pclose(p), 0) << out;
  EXPECT_NE(out.find("test.arr_long"), std::string::npos) << out;
  EXPECT_NE(out.find("(1000 items)"), std::string::npos) << out;
  EXPECT_NE(out.find("blk.0.q4_k"), std::string::npos) << out;
  EXPECT_NE(out.find("Q4_K"), std::string::npos) << out;

  const std::string bad = std::string(NIBBLE_BINARY) + " gguf-dump " + gguf_data("ggml_types.json") + " 2>&1";
  p = popen(bad.c_str(), "r");
  ASSERT_NE(p, nullptr);
  out.clear();
  while (size_t n = fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  EXPECT_NE(pclose(p), 0);
  EXPECT_NE(out.find("not a GGUF file"), std::string::npos) << out;
}

}  // namespace
}  // namespace nibble

// Model files and training checkpoints: exact round trips through safetensors and
// checkpoint directories, Hugging Face's layout (checked by reading the raw file),
// llm.c import (the file is written here by hand), every kind of bad input, and saves
// that are interrupted or fail.
#include "adacc/train/checkpoint.h"

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <csignal>
#include <cstring>
#include <fstream>
#include <set>

#include "adacc/model/gpt2.h"
#include "adacc/runtime/step_executor.h"
#include "adacc/train/safetensors.h"
#include "reference/test_util.h"
#include "support/expect_error.h"
#include "support/temp_dir.h"

namespace adacc {
namespace {

namespace fs = std::filesystem;
using train::SafetensorsOutput;
using train::SafetensorsReader;

model::ModelConfig tiny() {
  return model::parse_config("L=2,C=32,H=4,V=100,T=16");  // Vp = 128
}

// Random normal parameters; the padded wte rows zero (as training keeps them).
model::ParamSet random_params(const model::ModelConfig& cfg, Allocator& alloc, std::uint64_t seed,
                              MemCategory category = MemCategory::params) {
  model::ParamSet p(cfg, alloc, category, "p");
  Rng rng(seed);
  float* w = p.flat.data<float>();
  for (std::int64_t i = 0; i < p.flat.numel(); ++i) w[i] = rng.normal();
  std::fill(w + std::int64_t{cfg.vocab} * cfg.n_embd,
            w + std::int64_t{cfg.padded_vocab} * cfg.n_embd, 0.0f);
  return p;
}

bool same_bytes(const Tensor& a, const Tensor& b) {
  return a.nbytes() == b.nbytes() && std::memcmp(a.raw(), b.raw(), a.nbytes()) == 0;
}

std::vector<char> read_all(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_all(const fs::path& path, const void* data, std::size_t bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(static_cast<const char*>(data), static_cast<std::streamsize>(bytes));
}

// A safetensors file from a header text and `data_bytes` zero bytes of data.
void write_raw_safetensors(const fs::path& path, const std::string& header,
                           std::size_t data_bytes) {
  std::vector<char> bytes(8 + header.size() + data_bytes, 0);
  std::uint64_t n = header.size();
  std::memcpy(bytes.data(), &n, 8);  // little-endian host
  std::memcpy(bytes.data() + 8, header.data(), header.size());
  write_all(path, bytes.data(), bytes.size());
}

// An llm.c checkpoint: 256 int32 header, then the parameters in llm.c order.
void write_llmc(const fs::path& path, const model::ModelConfig& cfg, const std::vector<float>& w,
                int magic = 20240326, int version = 3) {
  std::vector<std::int32_t> header(256, 0);
  header[0] = magic;
  header[1] = version;
  header[2] = cfg.max_seq;
  header[3] = cfg.vocab;
  header[4] = cfg.n_layer;
  header[5] = cfg.n_head;
  header[6] = cfg.n_embd;
  header[7] = cfg.padded_vocab;
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(header.data()), 1024);
  out.write(reinterpret_cast<const char*>(w.data()), static_cast<std::streamsize>(w.size() * 4));
}

// ------------------------------------------------------------------------------------
// safetensors export and import

TEST(Safetensors, ExportImportRoundTripIsBitExact) {
  test::TempDir dir("checkpoint_test");
  Allocator alloc;
  const model::ModelConfig cfg = tiny();
  const model::ParamSet saved = random_params(cfg, alloc, 1);
  train::save_safetensors(dir / "m.safetensors", cfg, saved);

  model::ParamSet loaded = random_params(cfg, alloc, 2);  // garbage to overwrite
  float* w = loaded.flat.data<float>();
  w[std::int64_t{cfg.padded_vocab} * cfg.n_embd - 1] = 7.0f;  // a padded row, nonzero
  train::load_parameters(dir / "m.safetensors", cfg, loaded);
  EXPECT_TRUE(same_bytes(saved.flat, loaded.flat));

  const model::ModelConfig read = train::read_model_config(dir / "m.safetensors");
  EXPECT_EQ(read.n_layer, cfg.n_layer);
  EXPECT_EQ(read.n_embd, cfg.n_embd);
  EXPECT_EQ(read.n_head, cfg.n_head);
  EXPECT_EQ(read.vocab, cfg.vocab);
  EXPECT_EQ(read.padded_vocab, cfg.padded_vocab);
  EXPECT_EQ(read.max_seq, cfg.max_seq);
  // Nothing besides the file itself (no temporary left behind).
  EXPECT_EQ(std::distance(fs::directory_iterator(dir.path()), fs::directory_iterator()), 1);
}

TEST(Safetensors, ExportUsesHuggingFaceLayout) {
  test::TempDir dir("checkpoint_test");
  Allocator alloc;
  const model::ModelConfig cfg = tiny();
  const model::ParamSet p = random_params(cfg, alloc, 3);
  train::save_safetensors(dir / "m.safetensors", cfg, p);

  const SafetensorsReader r(dir / "m.safetensors");
  EXPECT_EQ(r.tensors().size(), p.named().size());
  ASSERT_NE(r.metadata_value("format"), nullptr);
  EXPECT_EQ(*r.metadata_value("format"), "pt");
  ASSERT_NE(r.metadata_value("adacc.config"), nullptr);
  EXPECT_EQ(*r.metadata_value("adacc.config"), "L=2,C=32,H=4,V=100,T=16");

  const std::int64_t C = cfg.n_embd, V = cfg.vocab;
  auto read = [&](const std::string& name, Shape want) {
    const train::SafetensorsTensor* t = r.find(name);
    EXPECT_NE(t, nullptr) << name;
    if (t == nullptr) return std::vector<float>();
    EXPECT_EQ(t->dtype, "F32");
    EXPECT_EQ(t->shape, want) << name;
    std::vector<float> v(static_cast<std::size_t>(shape_numel(want)));
    r.read_f32(*t, 0, shape_numel(want), v.data());
    return v;
  };
  // Conv1D weights are (in,out): file[i][j] == adacc's (out,in) weight [j][i].
  struct Conv {
    const char* suffix;
    Tensor model::LayerParams::*member;
    std::int64_t in, out;
  };
  const Conv convs[] = {
      {"attn.c_attn.weight", &model::LayerParams::qkvw, C, 3 * C},
      {"attn.c_proj.weight", &model::LayerParams::attprojw, C, C},
      {"mlp.c_fc.weight", &model::LayerParams::fcw, C, 4 * C},
      {"mlp.c_proj.weight", &model::LayerParams::fcprojw, 4 * C, C},
  };
  for (int l = 0; l < cfg.n_layer; ++l) {
    for (const Conv& c : convs) {
      const std::string name = "transformer.h." + std::to_string(l) + "." + c.suffix;
      const std::vector<float> file = read(name, {c.in, c.out});
      if (file.empty()) continue;
      const float* w = (p.layers[static_cast<std::size_t>(l)].*c.member).data<float>();
      int wrong = 0;
      for (std::int64_t i = 0; i < c.in; ++i) {
        for (std::int64_t j = 0; j < c.out; ++j) wrong += file[i * c.out + j] != w[j * c.in + i];
      }
      EXPECT_EQ(wrong, 0) << name;
    }
  }
  // wte keeps its V real rows only; biases and the rest are stored as they are.
  const std::vector<float> wte = read("transformer.wte.weight", {V, C});
  EXPECT_EQ(std::memcmp(wte.data(), p.wte.raw(), wte.size() * 4), 0);
  const std::vector<float> qkvb = read("transformer.h.1.attn.c_attn.bias", {3 * C});
  EXPECT_EQ(std::memcmp(qkvb.data(), p.layers[1].qkvb.raw(), qkvb.size() * 4), 0);
  const std::vector<float> wpe = read("transformer.wpe.weight", {cfg.max_seq, C});
  EXPECT_EQ(std::memcmp(wpe.data(), p.wpe.raw(), wpe.size() * 4), 0);
}

// A file laid out as Hugging Face's gpt2 model.safetensors: names without the
// "transformer." prefix, attention mask buffers and lm_head.weight beside the
// parameters, no adacc metadata. Written here from the adacc params by plain loops.
void write_hf_style(const fs::path& path, const model::ModelConfig& cfg, const model::ParamSet& p,
                    std::vector<std::vector<float>>& keep) {
  const std::int64_t C = cfg.n_embd, V = cfg.vocab, T = cfg.max_seq;
  std::vector<SafetensorsOutput> out;
  auto add = [&](std::string name, Shape shape, std::vector<float> v) {
    keep.push_back(std::move(v));
    out.push_back({std::move(name), std::move(shape), keep.back().data(), {}});
  };
  keep.reserve(200);
  auto copy = [](const Tensor& t, std::int64_t n) {
    const float* w = t.data<float>();
    return std::vector<float>(w, w + n);
  };
  auto transposed = [](const Tensor& t) {  // (O,I) -> (I,O)
    const std::int64_t O = t.dim(0), I = t.dim(1);
    const float* w = t.data<float>();
    std::vector<float> v(static_cast<std::size_t>(O * I));
    for (std::int64_t o = 0; o < O; ++o) {
      for (std::int64_t i = 0; i < I; ++i) v[static_cast<std::size_t>(i * O + o)] = w[o * I + i];
    }
    return v;
  };
  add("wte.weight", {V, C}, copy(p.wte, V * C));
  add("wpe.weight", {T, C}, copy(p.wpe, T * C));
  for (int l = 0; l < cfg.n_layer; ++l) {
    const model::LayerParams& lp = p.layers[static_cast<std::size_t>(l)];
    const std::string h = "h." + std::to_string(l) + ".";
    add(h + "ln_1.weight", {C}, copy(lp.ln1w, C));
    add(h + "ln_1.bias", {C}, copy(lp.ln1b, C));
    add(h + "attn.bias", {1, 1, T, T}, std::vector<float>(static_cast<std::size_t>(T * T), 1.0f));
    add(h + "attn.masked_bias", {}, {-1e4f});
    add(h + "attn.c_attn.weight", {C, 3 * C}, transposed(lp.qkvw));
    add(h + "attn.c_attn.bias", {3 * C}, copy(lp.qkvb, 3 * C));
    add(h + "attn.c_proj.weight", {C, C}, transposed(lp.attprojw));
    add(h + "attn.c_proj.bias", {C}, copy(lp.attprojb, C));
    add(h + "ln_2.weight", {C}, copy(lp.ln2w, C));
    add(h + "ln_2.bias", {C}, copy(lp.ln2b, C));
    add(h + "mlp.c_fc.weight", {C, 4 * C}, transposed(lp.fcw));
    add(h + "mlp.c_fc.bias", {4 * C}, copy(lp.fcb, 4 * C));
    add(h + "mlp.c_proj.weight", {4 * C, C}, transposed(lp.fcprojw));
    add(h + "mlp.c_proj.bias", {C}, copy(lp.fcprojb, C));
  }
  add("ln_f.weight", {C}, copy(p.lnfw, C));
  add("ln_f.bias", {C}, copy(p.lnfb, C));
  add("lm_head.weight", {V, C}, copy(p.wte, V * C));
  train::write_safetensors(path, out, {{"format", "pt"}});
}

TEST(Safetensors, ImportsHuggingFaceFileAndInfersItsConfig) {
  test::TempDir dir("checkpoint_test");
  Allocator alloc;
  // C=128: the inferred head count is C/64 = 2.
  const model::ModelConfig cfg = model::parse_config("L=3,C=128,H=2,V=90,T=24");
  const model::ParamSet p = random_params(cfg, alloc, 4);
  std::vector<std::vector<float>> keep;
  write_hf_style(dir / "hf.safetensors", cfg, p, keep);

  const model::ModelConfig read = train::read_model_config(dir / "hf.safetensors");
  EXPECT_EQ(read.n_layer, 3);
  EXPECT_EQ(read.n_embd, 128);
  EXPECT_EQ(read.n_head, 2);
  EXPECT_EQ(read.vocab, 90);
  EXPECT_EQ(read.padded_vocab, 128);
  EXPECT_EQ(read.max_seq, 24);

  model::ParamSet loaded = random_params(cfg, alloc, 5);
  loaded.wte.data<float>()[std::int64_t{cfg.padded_vocab} * cfg.n_embd - 1] = 3.0f;
  train::load_parameters(dir / "hf.safetensors", cfg, loaded);
  EXPECT_TRUE(same_bytes(p.flat, loaded.flat));
}

TEST(Safetensors, MatricesLargerThanTheStagingBufferConvertExactly) {
  test::TempDir dir("checkpoint_test");
  Allocator alloc;
  // fc (4C,C) = 589824 floats: several staging chunks each way.
  const model::ModelConfig cfg = model::parse_config("L=1,C=384,H=6,V=300,T=8");
  const model::ParamSet p = random_params(cfg, alloc, 11);
  std::vector<std::vector<float>> keep;
  write_hf_style(dir / "hf.safetensors", cfg, p, keep);
  model::ParamSet loaded(cfg, alloc, MemCategory::params, "loaded");
  train::load_parameters(dir / "hf.safetensors", cfg, loaded);
  EXPECT_TRUE(same_bytes(p.flat, loaded.flat));

  train::save_safetensors(dir / "m.safetensors", cfg, p);
  const SafetensorsReader ours(dir / "m.safetensors"), hf(dir / "hf.safetensors");
  for (const char* name : {"h.0.mlp.c_fc.weight", "h.0.mlp.c_proj.weight"}) {
    const train::SafetensorsTensor* a = ours.find(std::string("transformer.") + name);
    const train::SafetensorsTensor* b = hf.find(name);
    ASSERT_TRUE(a != nullptr && b != nullptr);
    ASSERT_EQ(a->shape, b->shape);
    std::vector<float> va(static_cast<std::size_t>(shape_numel(a->shape))), vb(va.size());
    ours.read_f32(*a, 0, shape_numel(a->shape), va.data());
    hf.read_f32(*b, 0, shape_numel(b->shape), vb.data());
    EXPECT_TRUE(va == vb) << name;
  }
}

// ------------------------------------------------------------------------------------
// llm.c import

float loss_of(const model::ModelConfig& cfg, Allocator& alloc,
              const std::function<void(model::ParamSet&)>& load) {
  Context ctx(alloc, 2, 1);
  model::Gpt2 gpt(cfg, alloc);
  load(gpt.params());
  const int B = 2, T = 9;
  std::vector<int> tokens, targets;
  for (int i = 0; i < B * T; ++i) {
    tokens.push_back((i * 37 + 11) % cfg.vocab);
    targets.push_back((i * 53 + 5) % cfg.vocab);
  }
  Tensor tok = test::to_int_tensor(alloc, tokens, {B, T});
  Tensor tgt = test::to_int_tensor(alloc, targets, {B, T}, "targets");
  const model::StepGraph graph = gpt.build_graph(B, T);
  runtime::StepExecutor exec(graph, gpt.params(), gpt.grads(), ctx);
  return exec.forward(tok, tgt);
}

TEST(Llmc, ImportMatchesTheFileAndSurvivesSafetensorsExport) {
  test::TempDir dir("checkpoint_test");
  Allocator alloc;
  const model::ModelConfig cfg = tiny();
  const std::int64_t C = cfg.n_embd, V = cfg.vocab, Vp = cfg.padded_vocab;
  // Small weights so that the forward pass is well-behaved; padded rows nonzero in the
  // file, to check that import zeroes them.
  Rng rng(6);
  std::vector<float> w(static_cast<std::size_t>(cfg.num_parameters()));
  for (float& x : w) x = 0.1f * rng.normal();
  write_llmc(dir / "gpt2.bin", cfg, w);

  const model::ModelConfig read = train::read_model_config(dir / "gpt2.bin");
  EXPECT_EQ(read.n_layer, cfg.n_layer);
  EXPECT_EQ(read.n_embd, cfg.n_embd);
  EXPECT_EQ(read.n_head, cfg.n_head);
  EXPECT_EQ(read.vocab, cfg.vocab);
  EXPECT_EQ(read.padded_vocab, cfg.padded_vocab);
  EXPECT_EQ(read.max_seq, cfg.max_seq);

  model::ParamSet from_llmc = random_params(cfg, alloc, 7);
  train::load_parameters(dir / "gpt2.bin", cfg, from_llmc);
  std::vector<float> expected = w;
  std::fill(expected.begin() + V * C, expected.begin() + Vp * C, 0.0f);
  EXPECT_EQ(std::memcmp(from_llmc.flat.raw(), expected.data(), expected.size() * 4), 0);

  train::save_safetensors(dir / "gpt2.safetensors", cfg, from_llmc);
  model::ParamSet from_st = random_params(cfg, alloc, 8);
  train::load_parameters(dir / "gpt2.safetensors", cfg, from_st);
  EXPECT_TRUE(same_bytes(from_llmc.flat, from_st.flat));

  // The same model either way: equal losses, and equal to the weights set directly.
  const float direct = loss_of(cfg, alloc, [&](model::ParamSet& p) {
    std::memcpy(p.flat.raw(), expected.data(), expected.size() * 4);
  });
  const float via_llmc = loss_of(
      cfg, alloc, [&](model::ParamSet& p) { train::load_parameters(dir / "gpt2.bin", cfg, p); });
  const float via_st = loss_of(cfg, alloc, [&](model::ParamSet& p) {
    train::load_parameters(dir / "gpt2.safetensors", cfg, p);
  });
  EXPECT_TRUE(std::isfinite(direct));
  EXPECT_EQ(via_llmc, direct);
  EXPECT_EQ(via_st, direct);
}

TEST(Llmc, RejectsWrongMagicVersionTruncationAndShape) {
  test::TempDir dir("checkpoint_test");
  Allocator alloc;
  const model::ModelConfig cfg = tiny();
  model::ParamSet p(cfg, alloc, MemCategory::params, "p");
  const std::vector<float> w(static_cast<std::size_t>(cfg.num_parameters()), 0.5f);
  const auto file = dir / "gpt2.bin";

  write_llmc(file, cfg, w, 20240327);  // not llm.c, not safetensors either
  EXPECT_ERROR(FormatError, train::load_parameters(file, cfg, p), "gpt2.bin");
  EXPECT_ERROR(FormatError, train::read_model_config(file), "llm.c");

  write_llmc(file, cfg, w, 20240326, 5);
  EXPECT_ERROR(FormatError, train::load_parameters(file, cfg, p), "version 5");
  EXPECT_ERROR(FormatError, train::read_model_config(file), "version 5");

  write_llmc(file, cfg, std::vector<float>(w.begin(), w.end() - 3));
  EXPECT_ERROR(FormatError, train::load_parameters(file, cfg, p), "truncated");
  EXPECT_ERROR(FormatError, train::read_model_config(file), "truncated");

  write_llmc(file, cfg, {});
  std::filesystem::resize_file(file, 600);  // inside the header
  EXPECT_ERROR(FormatError, train::load_parameters(file, cfg, p), "header");

  write_llmc(file, cfg, w);
  const model::ModelConfig wider = model::parse_config("L=2,C=48,H=4,V=100,T=16");
  model::ParamSet q(wider, alloc, MemCategory::params, "q");
  EXPECT_ERROR(FormatError, train::load_parameters(file, wider, q),
               "tensor 'transformer.wte.weight' is (100,32) but the model needs (V,C) = (100,48)");
  const model::ModelConfig deeper = model::parse_config("L=3,C=32,H=4,V=100,T=16");
  model::ParamSet d(deeper, alloc, MemCategory::params, "d");
  EXPECT_ERROR(FormatError, train::load_parameters(file, deeper, d), "transformer.h.2.");

  // A failed load leaves the parameters as they were.
  EXPECT_EQ(p.flat.data<float>()[0], 0.0f);
}

// ------------------------------------------------------------------------------------
// Bad safetensors files

TEST(Safetensors, RejectsMissingTruncatedAndCorruptFiles) {
  test::TempDir dir("checkpoint_test");
  Allocator alloc;
  const model::ModelConfig cfg = tiny();
  model::ParamSet p(cfg, alloc, MemCategory::params, "p");
  const auto file = dir / "bad.safetensors";

  EXPECT_ERROR(InvalidArgument, train::load_parameters(dir / "none.safetensors", cfg, p),
               "none.safetensors");
  EXPECT_THROW(train::read_model_config(dir / "none.safetensors"), InvalidArgument);

  write_all(file, "\x10\0\0", 3);
  EXPECT_ERROR(FormatError, train::load_parameters(file, cfg, p), "bad.safetensors");
  EXPECT_ERROR(FormatError, train::read_model_config(file), "shorter than the 8-byte");

  write_raw_safetensors(file, "{}", 0);
  std::uint64_t huge = 1000;
  std::vector<char> bytes = read_all(file);
  std::memcpy(bytes.data(), &huge, 8);
  write_all(file, bytes.data(), bytes.size());
  EXPECT_ERROR(FormatError, train::load_parameters(file, cfg, p), "exceeds the file size");

  write_raw_safetensors(file, R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]})", 8);
  EXPECT_ERROR(FormatError, train::load_parameters(file, cfg, p), "not valid JSON");
  EXPECT_ERROR(FormatError, train::read_model_config(file), "not valid JSON");

  // Header entries that parse but do not describe the data.
  const std::pair<std::string, std::string> bad_headers[] = {
      {R"({"a": {"dtype": "Q7", "shape": [2], "data_offsets": [0, 8]}})", "unknown dtype 'Q7'"},
      {R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 16]}})",
       "beyond the data section"},
      {R"({"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}})", "needs 12 bytes"},
      {R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},)"
       R"( "b": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}})",
       "overlap"},
      {R"({"a": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}})", "shape entry"},
      {R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [8, 0]}})", "begin > end"},
      {R"({"a": {"dtype": "F32", "shape": [2]}})", "data_offsets"},
      {R"({"__metadata__": {"k": 1}})", "not a string"},
      {R"([1, 2])", "not a JSON object"},
  };
  for (const auto& [header, needle] : bad_headers) {
    write_raw_safetensors(file, header, 8);
    EXPECT_ERROR(FormatError, SafetensorsReader{file}, needle);
  }

  // A real file cut short inside its data.
  train::save_safetensors(file, cfg, p);
  fs::resize_file(file, fs::file_size(file) - 5);
  EXPECT_ERROR(FormatError, train::load_parameters(file, cfg, p), "truncated file");
}

TEST(Safetensors, RejectsAFileOfAnotherShapeNamingTheTensor) {
  test::TempDir dir("checkpoint_test");
  Allocator alloc;
  const model::ModelConfig cfg = tiny();
  const model::ParamSet p = random_params(cfg, alloc, 9);
  train::save_safetensors(dir / "m.safetensors", cfg, p);

  const model::ModelConfig wider = model::parse_config("L=2,C=48,H=4,V=100,T=16");
  model::ParamSet q(wider, alloc, MemCategory::params, "q");
  EXPECT_ERROR(FormatError, train::load_parameters(dir / "m.safetensors", wider, q),
               "tensor 'transformer.wte.weight' is (100,32) but the model needs (V,C) = (100,48)");
  const model::ModelConfig shallower = model::parse_config("L=1,C=32,H=4,V=100,T=16");
  model::ParamSet s(shallower, alloc, MemCategory::params, "s");
  EXPECT_ERROR(FormatError, train::load_parameters(dir / "m.safetensors", shallower, s),
               "'transformer.h.1.");
  const model::ModelConfig other_heads = model::parse_config("L=2,C=32,H=2,V=100,T=16");
  model::ParamSet h(other_heads, alloc, MemCategory::params, "h");
  EXPECT_ERROR(FormatError, train::load_parameters(dir / "m.safetensors", other_heads, h), "H=4");

  // One matrix left in adacc's (out,in) layout, one tensor missing.
  std::vector<SafetensorsOutput> out;
  for (const model::NamedParam& np : p.named()) {
    Shape shape = np.tensor.shape();
    const bool conv =
        np.name.find(".weight") != std::string::npos &&
        (np.name.find("c_attn") != std::string::npos ||
         np.name.find("c_proj") != std::string::npos || np.name.find("c_fc") != std::string::npos);
    if (conv && np.name != "transformer.h.0.attn.c_attn.weight") shape = {shape[1], shape[0]};
    if (np.name == "transformer.wte.weight") shape = {cfg.vocab, cfg.n_embd};
    out.push_back({np.name, shape, np.tensor.data<float>(), {}});
  }
  train::write_safetensors(dir / "untransposed.safetensors", out, {});
  model::ParamSet r(cfg, alloc, MemCategory::params, "r");
  EXPECT_ERROR(FormatError, train::load_parameters(dir / "untransposed.safetensors", cfg, r),
               "tensor 'transformer.h.0.attn.c_attn.weight' is (96,32) but the model needs "
               "(C,3C) = (32,96)");
  for (SafetensorsOutput& o : out) {
    if (o.name == "transformer.h.0.attn.c_attn.weight") o.shape = {o.shape[1], o.shape[0]};
  }
  out.pop_back();  // transformer.ln_f.bias
  train::write_safetensors(dir / "missing.safetensors", out, {});
  EXPECT_ERROR(FormatError, train::load_parameters(dir / "missing.safetensors", cfg, r),
               "has no tensor 'transformer.ln_f.bias'");
}

// ------------------------------------------------------------------------------------
// Training checkpoints

struct Trained {
  model::ParamSet params, m, v;
  train::TrainingState state;
};

Trained random_training(const model::ModelConfig& cfg, Allocator& alloc, std::uint64_t seed) {
  Trained t{random_params(cfg, alloc, seed),
            random_params(cfg, alloc, seed + 100),
            random_params(cfg, alloc, seed + 200),
            {}};
  float* v = t.v.flat.data<float>();
  for (std::int64_t i = 0; i < t.v.flat.numel(); ++i) v[i] = v[i] * v[i];
  t.state.step = static_cast<std::int64_t>(seed);
  t.state.rng = {seed, 0x8000000000000005ull, 3, UINT64_MAX};
  t.state.loader = {123456789012ull + seed, 3};
  t.state.options_json = R"({"model":"gpt2","lr":0.0003,"B":4})";
  return t;
}

void expect_loads_as(const fs::path& dir, const model::ModelConfig& cfg, Allocator& alloc,
                     const Trained& want) {
  model::ParamSet p(cfg, alloc, MemCategory::params, "p"),
      m(cfg, alloc, MemCategory::optimizer, "m"), v(cfg, alloc, MemCategory::optimizer, "v");
  const train::TrainingState s = train::load_checkpoint(dir, cfg, p, m, v);
  EXPECT_TRUE(same_bytes(p.flat, want.params.flat));
  EXPECT_TRUE(same_bytes(m.flat, want.m.flat));
  EXPECT_TRUE(same_bytes(v.flat, want.v.flat));
  EXPECT_EQ(s.step, want.state.step);
  EXPECT_EQ(s.rng, want.state.rng);
  EXPECT_EQ(s.loader.position, want.state.loader.position);
  EXPECT_EQ(s.loader.epoch, want.state.loader.epoch);
  EXPECT_EQ(s.options_json, want.state.options_json);
}

std::set<std::string> listing(const fs::path& dir) {
  std::set<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.insert(e.path().filename().string());
  return names;
}

void save(const fs::path& dir, const model::ModelConfig& cfg, const Trained& t) {
  train::save_checkpoint(dir, cfg, t.params, t.m, t.v, t.state);
}

TEST(Checkpoint, SaveLoadRoundTripIsExactAndOlderFilesGo) {
  test::TempDir tmp("checkpoint_test");
  Allocator alloc;
  const model::ModelConfig cfg = tiny();
  const fs::path dir = tmp / "run";  // created by the save
  Trained a = random_training(cfg, alloc, 42);
  save(dir, cfg, a);
  EXPECT_EQ(listing(dir), (std::set<std::string>{"checkpoint.json", "model-42.safetensors",
                                                 "optim-42.safetensors"}));
  expect_loads_as(dir, cfg, alloc, a);
  const model::ModelConfig read = train::read_checkpoint_config(dir);
  EXPECT_EQ(read.n_layer, cfg.n_layer);
  EXPECT_EQ(read.n_embd, cfg.n_embd);
  EXPECT_EQ(read.n_head, cfg.n_head);
  EXPECT_EQ(read.vocab, cfg.vocab);
  EXPECT_EQ(read.max_seq, cfg.max_seq);
  // The model file of a checkpoint is an ordinary model file.
  model::ParamSet p(cfg, alloc, MemCategory::params, "p");
  train::load_parameters(dir / "model-42.safetensors", cfg, p);
  EXPECT_TRUE(same_bytes(p.flat, a.params.flat));

  Trained b = random_training(cfg, alloc, 43);
  b.state.options_json = "lr = 3e-4, not JSON";  // kept as a string, exactly
  save(dir, cfg, b);
  EXPECT_EQ(listing(dir), (std::set<std::string>{"checkpoint.json", "model-43.safetensors",
                                                 "optim-43.safetensors"}));
  expect_loads_as(dir, cfg, alloc, b);
  b.state.options_json = "{ \"pretty\": true }";  // JSON, but not in compact form
  save(dir, cfg, b);
  expect_loads_as(dir, cfg, alloc, b);
}

TEST(Checkpoint, InterruptedSaveLeavesThePreviousCheckpointLoadable) {
  test::TempDir tmp("checkpoint_test");
  Allocator alloc;
  const model::ModelConfig cfg = tiny();
  const Trained a = random_training(cfg, alloc, 10);
  save(tmp.path(), cfg, a);
  // What a crash in the middle of saving step 11 leaves: temporaries, the save's journal,
  // and a model file renamed into place but cut short, not referenced by checkpoint.json.
  const std::vector<char> model = read_all(tmp / "model-10.safetensors");
  write_all(tmp / "model-11.safetensors.tmp-99999", model.data(), model.size() / 3);
  write_all(tmp / "model-11.safetensors", model.data(), model.size() / 2);
  const std::string journal = "model-11.safetensors\noptim-11.safetensors\n";
  write_all(tmp / ".adacc-save-journal", journal.data(), journal.size());
  write_all(tmp / "optim-11.safetensors.tmp-99999", "x", 1);
  write_all(tmp / "checkpoint.json.tmp-99999", "{\"step\": 11", 11);
  write_all(tmp / "model.safetensors.tmp-99999", "x", 1);  // a final model's write, killed
  expect_loads_as(tmp.path(), cfg, alloc, a);
  // The next save clears the leftovers and the previous checkpoint's files, and keeps
  // other files, even those named like a checkpoint's.
  for (const char* name :
       {"notes.txt", "model-best.safetensors", "checkpoint.json.bak", "model-7.safetensors",
        "optim-7.safetensors", "model.safetensors.tmp-mine"}) {
    write_all(tmp / name, "mine", 4);
  }
  const Trained b = random_training(cfg, alloc, 12);
  save(tmp.path(), cfg, b);
  EXPECT_EQ(listing(tmp.path()),
            (std::set<std::string>{"checkpoint.json", "model-12.safetensors",
                                   "optim-12.safetensors", "notes.txt", "model-best.safetensors",
                                   "checkpoint.json.bak", "model-7.safetensors",
                                   "optim-7.safetensors", "model.safetensors.tmp-mine"}));
  expect_loads_as(tmp.path(), cfg, alloc, b);
}

// While it lives, files this process writes cannot grow beyond `bytes` (RLIMIT_FSIZE,
// which binds root too); a write beyond fails with EFBIG instead of raising SIGXFSZ.
class FileSizeLimit {
 public:
  explicit FileSizeLimit(rlim_t bytes) {
    ::getrlimit(RLIMIT_FSIZE, &saved_);
    saved_handler_ = std::signal(SIGXFSZ, SIG_IGN);
    rlimit lower = saved_;
    lower.rlim_cur = bytes;
    EXPECT_EQ(::setrlimit(RLIMIT_FSIZE, &lower), 0);
  }
  ~FileSizeLimit() {
    ::setrlimit(RLIMIT_FSIZE, &saved_);
    std::signal(SIGXFSZ, saved_handler_);
  }
  FileSizeLimit(const FileSizeLimit&) = delete;
  FileSizeLimit& operator=(const FileSizeLimit&) = delete;

 private:
  rlimit saved_{};
  void (*saved_handler_)(int) = nullptr;
};

TEST(Checkpoint, FailedSaveLeavesNothingBehind) {
  test::TempDir tmp("checkpoint_test");
  Allocator alloc;
  const model::ModelConfig cfg = tiny();
  const Trained a = random_training(cfg, alloc, 6);

  // The directory cannot be created: a file has its name.
  write_all(tmp / "file", "x", 1);
  EXPECT_THROW(save(tmp / "file", cfg, a), BackendError);
  EXPECT_EQ(listing(tmp.path()), std::set<std::string>{"file"});

  // The optimizer file cannot be renamed into place (a directory has its name): the
  // model file this save wrote and every temporary go; the previous checkpoint stays.
  const fs::path dir = tmp / "run";
  save(dir, cfg, a);
  const std::vector<char> json = read_all(dir / "checkpoint.json");
  Trained b = random_training(cfg, alloc, 7);
  fs::create_directories(dir / "optim-7.safetensors" / "blocker");
  // A journal naming the current checkpoint's files (a save killed after it committed
  // checkpoint.json, before it removed the journal): they are not a partial save's.
  const std::string journal = "model-6.safetensors\noptim-6.safetensors\n";
  write_all(dir / ".adacc-save-journal", journal.data(), journal.size());
  EXPECT_ERROR(BackendError, save(dir, cfg, b), "optim-7.safetensors");
  EXPECT_EQ(listing(dir), (std::set<std::string>{"checkpoint.json", "model-6.safetensors",
                                                 "optim-6.safetensors", "optim-7.safetensors"}));
  EXPECT_EQ(read_all(dir / "checkpoint.json"), json);
  expect_loads_as(dir, cfg, alloc, a);

  // A directory under a regular file (ENOTDIR, for root as for anyone): nothing is made.
  EXPECT_ERROR(BackendError, save(tmp / "file" / "run", cfg, a), "file");
  EXPECT_EQ(listing(tmp.path()), (std::set<std::string>{"file", "run"}));

  // Writes that fail part way: the file-size limit, which binds root too (a directory
  // without write permission would not: root writes there anyway). The save throws, its
  // journal and temporaries go, and the previous checkpoint stays.
  const Trained c = random_training(cfg, alloc, 8);
  {
    const FileSizeLimit limit(16 << 10);  // the journal fits, the model file does not
    EXPECT_ERROR(BackendError, save(dir, cfg, c), "model-8.safetensors");
  }
  EXPECT_EQ(listing(dir), (std::set<std::string>{"checkpoint.json", "model-6.safetensors",
                                                 "optim-6.safetensors", "optim-7.safetensors"}));
  EXPECT_EQ(read_all(dir / "checkpoint.json"), json);
  expect_loads_as(dir, cfg, alloc, a);
  save(dir, cfg, c);  // and without the limit the same save succeeds
  expect_loads_as(dir, cfg, alloc, c);
}

TEST(Checkpoint, RejectsMissingAndCorruptCheckpoints) {
  test::TempDir tmp("checkpoint_test");
  Allocator alloc;
  const model::ModelConfig cfg = tiny();
  model::ParamSet p(cfg, alloc, MemCategory::params, "p"),
      m(cfg, alloc, MemCategory::optimizer, "m"), v(cfg, alloc, MemCategory::optimizer, "v");
  EXPECT_ERROR(InvalidArgument, train::load_checkpoint(tmp / "none", cfg, p, m, v), "none");
  EXPECT_ERROR(InvalidArgument, train::load_checkpoint(tmp.path(), cfg, p, m, v),
               "checkpoint.json");
  EXPECT_THROW(train::read_checkpoint_config(tmp.path()), InvalidArgument);

  const Trained a = random_training(cfg, alloc, 5);
  save(tmp.path(), cfg, a);
  const std::vector<char> json = read_all(tmp / "checkpoint.json");
  auto corrupt = [&](const std::string& text) {
    write_all(tmp / "checkpoint.json", text.data(), text.size());
  };
  auto restore = [&] { write_all(tmp / "checkpoint.json", json.data(), json.size()); };

  corrupt(std::string(json.begin(), json.begin() + static_cast<std::ptrdiff_t>(json.size() / 2)));
  EXPECT_ERROR(FormatError, train::load_checkpoint(tmp.path(), cfg, p, m, v), "checkpoint.json");
  EXPECT_ERROR(FormatError, train::read_checkpoint_config(tmp.path()), "not valid JSON");

  std::string text(json.begin(), json.end());
  auto replaced = [&](const std::string& from, const std::string& to) {
    std::string t = text;
    const std::size_t at = t.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    return t.replace(at, from.size(), to);
  };
  corrupt(replaced("\"rng\": [", "\"rng\": [\"x\", "));
  EXPECT_ERROR(FormatError, train::load_checkpoint(tmp.path(), cfg, p, m, v), "'rng'");
  corrupt(replaced("model-5.safetensors", "model-4.safetensors"));
  EXPECT_ERROR(FormatError, train::load_checkpoint(tmp.path(), cfg, p, m, v),
               "model-4.safetensors");
  corrupt(replaced("model-5.safetensors", "../model-5.safetensors"));
  EXPECT_ERROR(FormatError, train::load_checkpoint(tmp.path(), cfg, p, m, v), "'model'");
  corrupt(replaced("\"step\": 5", "\"step\": -5"));
  EXPECT_ERROR(FormatError, train::load_checkpoint(tmp.path(), cfg, p, m, v), "'step'");
  restore();

  // A checkpoint of another model.
  const model::ModelConfig wider = model::parse_config("L=2,C=48,H=4,V=100,T=16");
  model::ParamSet wp(wider, alloc, MemCategory::params, "p"),
      wm(wider, alloc, MemCategory::optimizer, "m"), wv(wider, alloc, MemCategory::optimizer, "v");
  EXPECT_ERROR(FormatError, train::load_checkpoint(tmp.path(), wider, wp, wm, wv), "C=32");

  // A referenced file cut short.
  const std::vector<char> optim = read_all(tmp / "optim-5.safetensors");
  write_all(tmp / "optim-5.safetensors", optim.data(), optim.size() - 100);
  EXPECT_ERROR(FormatError, train::load_checkpoint(tmp.path(), cfg, p, m, v),
               "optim-5.safetensors");
  write_all(tmp / "optim-5.safetensors", optim.data(), optim.size());
  expect_loads_as(tmp.path(), cfg, alloc, a);

  // ParamSets of another config are the caller's mistake.
  EXPECT_THROW(train::load_checkpoint(tmp.path(), cfg, wp, m, v), InvalidArgument);
  EXPECT_THROW(train::save_checkpoint(tmp.path(), cfg, p, wm, v, a.state), InvalidArgument);
}

}  // namespace
}  // namespace adacc

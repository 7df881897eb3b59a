#include <cstdio>
#include <filesystem>

#include "base/error.h"
#include "cli/commands.h"
#include "model/model.h"
#include "model/tokenizer_source.h"
#include "model/writer.h"

namespace cc::cli {

namespace {

WriteFormat parse_format(const std::string& f) {
  if (f == "gguf") return WriteFormat::GGUF;
  if (f == "hf") return WriteFormat::HuggingFace;
  fail("unknown output format '", f, "' (gguf or hf)");
}

void parse_type(const std::string& t, WriteOptions& w) {
  std::string up;
  for (char c : t) up += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (up == "Q4_K_M") {
    w.q4_k_m = true;
    return;
  }
  auto d = dtype_from_name(t);
  if (!d) fail("unknown weight type '", t, "' (f32, f16, bf16, q8_0, q4_0, q4_k, q6_k, q4_k_m)");
  w.dtype = *d;
}

}  // namespace

Runner add_make_model(CLI::App& app) {
  auto* sub = app.add_subcommand("make-model", "Write a model with random (seeded) weights: GGUF or HF folder");
  struct Opts {
    std::string preset = "tiny-llama", out, format = "gguf", type = "f32", tokenizer, name;
    uint64_t seed = 42;
    int64_t vocab = 0, embd = 0, layers = 0, heads = 0, kv_heads = 0, head_dim = 0, ff = 0, ctx = 0;
    float rope_theta = 0;
    std::string arch;
  };
  auto o = std::make_shared<Opts>();
  std::string presets;
  for (const auto& n : config_preset_names()) presets += (presets.empty() ? "" : ", ") + n;
  sub->add_option("--preset", o->preset, "base config: " + presets)->capture_default_str();
  sub->add_option("-o,--out", o->out, "output .gguf file or HF folder")->required();
  sub->add_option("--format", o->format, "gguf or hf")->capture_default_str();
  sub->add_option("--type", o->type, "weight type: f32 f16 bf16 q8_0 q4_0 q4_k q6_k q4_k_m")->capture_default_str();
  sub->add_option("--seed", o->seed, "random seed")->capture_default_str();
  sub->add_option("--tokenizer", o->tokenizer, "take the tokenizer from this GGUF / HF folder / tokenizer.json");
  sub->add_option("--name", o->name, "model name stored in the file");
  sub->add_option("--arch", o->arch, "override: llama or qwen2");
  sub->add_option("--vocab", o->vocab, "override: vocabulary size");
  sub->add_option("--embd", o->embd, "override: hidden size");
  sub->add_option("--layers", o->layers, "override: layer count");
  sub->add_option("--heads", o->heads, "override: query heads");
  sub->add_option("--kv-heads", o->kv_heads, "override: key/value heads");
  sub->add_option("--head-dim", o->head_dim, "override: head dimension");
  sub->add_option("--ff", o->ff, "override: feed-forward size");
  sub->add_option("--ctx", o->ctx, "override: trained context length");
  sub->add_option("--rope-theta", o->rope_theta, "override: RoPE base");
  return [o]() {
    ModelConfig c = config_preset(o->preset);
    if (!o->arch.empty()) {
      if (o->arch == "llama") c.arch = Arch::Llama, c.qkv_bias = false;
      else if (o->arch == "qwen2") c.arch = Arch::Qwen2, c.qkv_bias = true;
      else fail("unknown architecture '", o->arch, "' (llama or qwen2)");
    }
    if (o->embd) c.n_embd = o->embd, c.head_dim = c.n_embd / c.n_head;
    if (o->heads) c.n_head = o->heads, c.head_dim = c.n_embd / c.n_head;
    if (o->kv_heads) c.n_head_kv = o->kv_heads;
    if (o->head_dim) c.head_dim = o->head_dim;
    if (o->layers) c.n_layer = o->layers;
    if (o->ff) c.n_ff = o->ff;
    if (o->ctx) c.n_ctx_train = o->ctx;
    if (o->rope_theta > 0) c.rope_theta = o->rope_theta;
    TokenizerSpec tok;
    if (!o->tokenizer.empty()) {
      tok = load_tokenizer_spec(o->tokenizer, o->vocab);
      if (c.n_vocab == 0 || c.n_vocab < static_cast<int64_t>(tok.tokens.size())) {
        c.n_vocab = static_cast<int64_t>(tok.tokens.size());
      }
    }
    if (o->vocab) c.n_vocab = o->vocab;
    if (c.n_vocab == 0) c.n_vocab = 512;
    if (o->tokenizer.empty()) tok = default_tokenizer(c.n_vocab);
    WriteOptions w;
    w.format = parse_format(o->format);
    parse_type(o->type, w);
    w.seed = o->seed;
    w.name = o->name.empty() ? o->preset : o->name;
    c.validate("make-model");
    write_model(c, tok, random_values(o->seed), o->out, w);
    std::printf("wrote %s (%s, %s, %s)\n", o->out.c_str(), arch_name(c.arch), o->format.c_str(), o->type.c_str());
    return 0;
  };
}

Runner add_convert(CLI::App& app) {
  auto* sub = app.add_subcommand("convert", "Convert a model between GGUF, HF folders and llama2.c (read only)");
  struct Opts {
    std::string in, out, format = "gguf", type = "f32", tokenizer;
  };
  auto o = std::make_shared<Opts>();
  sub->add_option("input", o->in, "input model")->required();
  sub->add_option("output", o->out, "output .gguf file or HF folder")->required();
  sub->add_option("--format", o->format, "gguf or hf")->capture_default_str();
  sub->add_option("--type", o->type, "weight type of the output")->capture_default_str();
  sub->add_option("--tokenizer", o->tokenizer, "tokenizer.bin for a llama2.c input");
  return [o]() {
    LoadOptions lo;
    lo.tokenizer_path = o->tokenizer;
    Model m = load_model(o->in, lo);
    WriteOptions w;
    w.format = parse_format(o->format);
    parse_type(o->type, w);
    w.name = m.config.name;
    write_model(m.config, m.tokenizer, model_values(m, file_rope_pairing(w.format, m.config.arch)), o->out, w);
    std::printf("wrote %s\n", o->out.c_str());
    return 0;
  };
}

}  // namespace cc::cli

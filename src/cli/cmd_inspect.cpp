#include <cstdio>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>

#include "base/error.h"
#include "cli/commands.h"
#include "model/model.h"

namespace cc::cli {

namespace {

const char* scaling_name(RopeScalingType t) {
  switch (t) {
    case RopeScalingType::None: return "none";
    case RopeScalingType::Linear: return "linear";
    case RopeScalingType::Llama3: return "llama3";
  }
  return "?";
}

std::string human_bytes(double b) {
  const char* u[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int i = 0;
  while (b >= 1024 && i < 4) b /= 1024, ++i;
  char buf[32];
  std::snprintf(buf, sizeof buf, i ? "%.2f %s" : "%.0f %s", b, u[i]);
  return buf;
}

}  // namespace

Runner add_inspect(CLI::App& app) {
  auto* sub = app.add_subcommand("inspect", "Describe a model: architecture, tensors, tokenizer, memory");
  struct Opts {
    std::string model, tokenizer;
    bool json = false, tensors = false;
  };
  auto o = std::make_shared<Opts>();
  sub->add_option("model", o->model, "GGUF file, Hugging Face folder or llama2.c checkpoint")->required();
  sub->add_option("--tokenizer", o->tokenizer, "tokenizer.bin for a llama2.c checkpoint");
  sub->add_flag("--json", o->json, "print JSON");
  sub->add_flag("--tensors", o->tensors, "list every tensor");
  return [o]() {
    LoadOptions lo;
    lo.tokenizer_path = o->tokenizer;
    Model m = load_model(o->model, lo);
    const ModelConfig& c = m.config;
    std::map<std::string, int> type_counts;
    for (const auto& t : m.tensors()) type_counts[dtype_name(t.type)]++;
    nlohmann::json j;
    j["path"] = m.path;
    j["format"] = model_format_name(m.format);
    j["architecture"] = arch_name(c.arch);
    j["name"] = c.name;
    j["n_vocab"] = c.n_vocab;
    j["n_embd"] = c.n_embd;
    j["n_layer"] = c.n_layer;
    j["n_head"] = c.n_head;
    j["n_head_kv"] = c.n_head_kv;
    j["head_dim"] = c.head_dim;
    j["n_ff"] = c.n_ff;
    j["n_ctx_train"] = c.n_ctx_train;
    j["rms_eps"] = c.rms_eps;
    j["rope_theta"] = c.rope_theta;
    j["rope_pairing"] = c.rope_pairing == RopePairing::Adjacent ? "adjacent" : "neox";
    j["rope_scaling"] = scaling_name(c.rope_scaling.type);
    if (c.rope_scaling.type != RopeScalingType::None) j["rope_scaling_factor"] = c.rope_scaling.factor;
    j["tied_embeddings"] = c.tied_embeddings;
    j["qkv_bias"] = c.qkv_bias;
    j["tensor_count"] = m.tensors().size();
    j["tensor_types"] = type_counts;
    j["n_params"] = m.n_params();
    j["weight_bytes"] = m.weight_bytes();
    j["kv_bytes_per_token"] = {{"f32", m.kv_bytes_per_token(DType::F32)},
                               {"f16", m.kv_bytes_per_token(DType::F16)},
                               {"bf16", m.kv_bytes_per_token(DType::BF16)}};
    const TokenizerSpec& t = m.tokenizer;
    j["tokenizer"] = {{"kind", t.kind == TokenizerKind::BPE ? "bpe (byte-level)" : "spm (sentencepiece bpe)"},
                      {"pre", t.pre},
                      {"size", t.tokens.size()},
                      {"merges", t.merges.size()},
                      {"bos_id", t.bos_id},
                      {"eos_id", t.eos_id},
                      {"add_bos", t.add_bos},
                      {"chat_template", !t.chat_template.empty()}};
    if (o->tensors) {
      for (const auto& tt : m.tensors()) {
        j["tensors"].push_back({{"name", tt.name}, {"type", dtype_name(tt.type)}, {"shape", tt.shape}, {"bytes", tt.nbytes}});
      }
    }
    if (o->json) {
      print_json(j);
      return 0;
    }
    std::string types;
    for (const auto& [k, v] : type_counts) types += (types.empty() ? "" : ", ") + k + " x" + std::to_string(v);
    std::printf("model            %s (%s)\n", m.path.c_str(), model_format_name(m.format));
    std::printf("architecture     %s%s%s\n", arch_name(c.arch), c.name.empty() ? "" : "  name: ", c.name.c_str());
    std::printf("vocab            %lld\n", static_cast<long long>(c.n_vocab));
    std::printf("embedding        %lld\n", static_cast<long long>(c.n_embd));
    std::printf("layers           %lld\n", static_cast<long long>(c.n_layer));
    std::printf("heads            %lld query, %lld key/value (head dim %lld)\n", static_cast<long long>(c.n_head),
                static_cast<long long>(c.n_head_kv), static_cast<long long>(c.head_dim));
    std::printf("feed-forward     %lld (SwiGLU)\n", static_cast<long long>(c.n_ff));
    std::printf("context (train)  %lld\n", static_cast<long long>(c.n_ctx_train));
    std::printf("rms epsilon      %g\n", static_cast<double>(c.rms_eps));
    std::printf("rope             theta %g, pairing %s, scaling %s", static_cast<double>(c.rope_theta),
                rope_pairing_name(c.rope_pairing), scaling_name(c.rope_scaling.type));
    if (c.rope_scaling.type != RopeScalingType::None) std::printf(" x%g", static_cast<double>(c.rope_scaling.factor));
    std::printf("\n");
    std::printf("embeddings       %s\n", c.tied_embeddings ? "tied (output = token embedding)" : "separate output");
    std::printf("qkv bias         %s\n", c.qkv_bias ? "yes" : "no");
    std::printf("tensors          %zu (%s)\n", m.tensors().size(), types.c_str());
    std::printf("parameters       %lld (%.1fM)\n", static_cast<long long>(m.n_params()), m.n_params() / 1e6);
    std::printf("weight bytes     %zu (%s)\n", m.weight_bytes(), human_bytes(static_cast<double>(m.weight_bytes())).c_str());
    std::printf("KV per token     %zu bytes f16/bf16, %zu bytes f32\n", m.kv_bytes_per_token(DType::F16),
                m.kv_bytes_per_token(DType::F32));
    std::printf("tokenizer        %s, pre '%s', %zu tokens, %zu merges, bos %d, eos %d%s\n",
                t.kind == TokenizerKind::BPE ? "byte-level BPE" : "SentencePiece BPE", t.pre.c_str(),
                t.tokens.size(), t.merges.size(), t.bos_id, t.eos_id,
                t.chat_template.empty() ? "" : ", chat template");
    if (o->tensors) {
      for (const auto& tt : m.tensors()) {
        std::string sh;
        for (auto d : tt.shape) sh += (sh.empty() ? "" : " x ") + std::to_string(d);
        std::printf("  %-32s %-5s %s\n", tt.name.c_str(), dtype_name(tt.type), sh.c_str());
      }
    }
    return 0;
  };
}

}  // namespace cc::cli

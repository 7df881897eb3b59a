#include "model/config.h"

#include <cmath>

#include "base/error.h"

namespace cc {

const char* arch_name(Arch a) { return a == Arch::Llama ? "llama" : "qwen2"; }
const char* rope_pairing_name(RopePairing p) {
  return p == RopePairing::Adjacent ? "adjacent (2i, 2i+1)" : "neox (i, i+d/2)";
}

std::vector<float> ModelConfig::rope_freq_factors() const {
  if (!rope_freqs.empty()) return rope_freqs;
  if (rope_scaling.type != RopeScalingType::Llama3) return {};
  const auto& s = rope_scaling;
  const double pi = 3.14159265358979323846;
  const double low_wavelen = static_cast<double>(s.original_context) / s.low_freq_factor;
  const double high_wavelen = static_cast<double>(s.original_context) / s.high_freq_factor;
  std::vector<float> out(static_cast<size_t>(head_dim / 2));
  for (int64_t i = 0; i < head_dim / 2; ++i) {
    double freq = std::pow(static_cast<double>(rope_theta), -2.0 * i / static_cast<double>(head_dim));
    double wavelen = 2 * pi / freq;
    double f;
    if (wavelen < high_wavelen) {
      f = 1.0;
    } else if (wavelen > low_wavelen) {
      f = s.factor;
    } else {
      double smooth = (s.original_context / wavelen - s.low_freq_factor) /
                      (s.high_freq_factor - s.low_freq_factor);
      f = 1.0 / ((1 - smooth) / s.factor + smooth);
    }
    out[static_cast<size_t>(i)] = static_cast<float>(f);
  }
  return out;
}

void ModelConfig::validate(const std::string& source) const {
  auto pos = [&](const char* what, int64_t v) {
    if (v <= 0) fail(source, ": ", what, " = ", v, " (must be positive)");
  };
  pos("vocabulary size", n_vocab);
  pos("embedding length", n_embd);
  pos("block count", n_layer);
  pos("head count", n_head);
  pos("KV head count", n_head_kv);
  pos("head dimension", head_dim);
  pos("feed-forward length", n_ff);
  if (n_embd > (1 << 16) || n_ff > (1 << 18) || n_layer > 1024 || n_head > 1024 || n_vocab > (1 << 22) ||
      head_dim > 1024) {
    fail(source, ": hyper-parameters out of range (embd ", n_embd, ", ff ", n_ff, ", layers ", n_layer,
         ", heads ", n_head, ", vocab ", n_vocab, ", head_dim ", head_dim, ")");
  }
  if (n_head % n_head_kv != 0) {
    fail(source, ": head count ", n_head, " is not a multiple of the KV head count ", n_head_kv);
  }
  if (head_dim % 2 != 0) fail(source, ": head dimension ", head_dim, " must be even for RoPE");
  if (!(rms_eps > 0) || !(rope_theta > 0) || !std::isfinite(rms_eps) || !std::isfinite(rope_theta)) {
    fail(source, ": rms epsilon (", rms_eps, ") and rope theta (", rope_theta, ") must be positive and finite");
  }
  for (float f : rope_freqs) {
    if (!(f > 0) || !std::isfinite(f)) fail(source, ": rope frequency factor ", f, " must be positive and finite");
  }
  if (rope_scaling.type != RopeScalingType::None && !(rope_scaling.factor > 0 && std::isfinite(rope_scaling.factor))) {
    fail(source, ": rope scaling factor must be positive");
  }
  if (rope_scaling.type == RopeScalingType::Llama3 &&
      !(rope_scaling.high_freq_factor > rope_scaling.low_freq_factor && rope_scaling.original_context > 0)) {
    fail(source, ": llama3 rope scaling needs high_freq_factor > low_freq_factor and original context > 0");
  }
}

std::vector<TensorSpec> expected_tensors(const ModelConfig& c) {
  const int64_t D = c.n_embd, qd = c.n_head * c.head_dim, kvd = c.n_head_kv * c.head_dim, F = c.n_ff;
  std::vector<TensorSpec> t;
  t.push_back({"token_embd.weight", {c.n_vocab, D}, false});
  for (int64_t l = 0; l < c.n_layer; ++l) {
    std::string p = cat("blk.", l, ".");
    t.push_back({p + "attn_norm.weight", {D}, true});
    t.push_back({p + "attn_q.weight", {qd, D}, false});
    t.push_back({p + "attn_k.weight", {kvd, D}, false});
    t.push_back({p + "attn_v.weight", {kvd, D}, false});
    if (c.qkv_bias) {
      t.push_back({p + "attn_q.bias", {qd}, true});
      t.push_back({p + "attn_k.bias", {kvd}, true});
      t.push_back({p + "attn_v.bias", {kvd}, true});
    }
    t.push_back({p + "attn_output.weight", {D, qd}, false});
    t.push_back({p + "ffn_norm.weight", {D}, true});
    t.push_back({p + "ffn_gate.weight", {F, D}, false});
    t.push_back({p + "ffn_up.weight", {F, D}, false});
    t.push_back({p + "ffn_down.weight", {D, F}, false});
  }
  t.push_back({"output_norm.weight", {D}, true});
  if (!c.tied_embeddings) t.push_back({"output.weight", {c.n_vocab, D}, false});
  return t;
}

std::vector<std::string> config_preset_names() {
  return {"tiny-llama", "tiny-qwen2", "tiny-llama3", "qwen2.5-0.5b", "qwen2.5-1.5b"};
}

ModelConfig config_preset(const std::string& name) {
  ModelConfig c;
  c.name = name;
  if (name == "tiny-llama" || name == "tiny-llama3") {
    c.arch = Arch::Llama;
    c.n_embd = 64, c.n_layer = 2, c.n_head = 4, c.n_head_kv = 2, c.head_dim = 16, c.n_ff = 160;
    c.n_ctx_train = 2048, c.rms_eps = 1e-5f, c.rope_theta = 10000.0f;
    if (name == "tiny-llama3") {
      c.rope_theta = 500000.0f;
      c.rope_scaling = {RopeScalingType::Llama3, 8.0f, 1.0f, 4.0f, 256};
    }
  } else if (name == "tiny-qwen2") {
    c.arch = Arch::Qwen2;
    c.n_embd = 64, c.n_layer = 2, c.n_head = 4, c.n_head_kv = 2, c.head_dim = 16, c.n_ff = 192;
    c.n_ctx_train = 4096, c.rms_eps = 1e-6f, c.rope_theta = 1000000.0f;
    c.tied_embeddings = true, c.qkv_bias = true;
  } else if (name == "qwen2.5-0.5b") {
    c.arch = Arch::Qwen2;
    c.n_vocab = 151936, c.n_embd = 896, c.n_layer = 24, c.n_head = 14, c.n_head_kv = 2, c.head_dim = 64;
    c.n_ff = 4864, c.n_ctx_train = 32768, c.rms_eps = 1e-6f, c.rope_theta = 1000000.0f;
    c.tied_embeddings = true, c.qkv_bias = true;
  } else if (name == "qwen2.5-1.5b") {
    c.arch = Arch::Qwen2;
    c.n_vocab = 151936, c.n_embd = 1536, c.n_layer = 28, c.n_head = 12, c.n_head_kv = 2, c.head_dim = 128;
    c.n_ff = 8960, c.n_ctx_train = 32768, c.rms_eps = 1e-6f, c.rope_theta = 1000000.0f;
    c.tied_embeddings = true, c.qkv_bias = true;
  } else {
    std::string all;
    for (const auto& n : config_preset_names()) all += (all.empty() ? "" : ", ") + n;
    fail("unknown model preset '", name, "' (known: ", all, ")");
  }
  return c;
}

}  // namespace cc

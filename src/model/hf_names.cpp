#include "model/hf_names.h"

#include "base/error.h"

namespace cc {

namespace {

// {canonical suffix, HF suffix} of the per-layer tensors.
constexpr std::pair<const char*, const char*> kLayer[] = {
    {"attn_norm.weight", "input_layernorm.weight"},
    {"attn_q.weight", "self_attn.q_proj.weight"},
    {"attn_k.weight", "self_attn.k_proj.weight"},
    {"attn_v.weight", "self_attn.v_proj.weight"},
    {"attn_q.bias", "self_attn.q_proj.bias"},
    {"attn_k.bias", "self_attn.k_proj.bias"},
    {"attn_v.bias", "self_attn.v_proj.bias"},
    {"attn_output.weight", "self_attn.o_proj.weight"},
    {"ffn_norm.weight", "post_attention_layernorm.weight"},
    {"ffn_gate.weight", "mlp.gate_proj.weight"},
    {"ffn_up.weight", "mlp.up_proj.weight"},
    {"ffn_down.weight", "mlp.down_proj.weight"},
};
constexpr std::pair<const char*, const char*> kGlobal[] = {
    {"token_embd.weight", "model.embed_tokens.weight"},
    {"output_norm.weight", "model.norm.weight"},
    {"output.weight", "lm_head.weight"},
};

// Splits "<prefix><digits>.<rest>"; false when the name does not have that form.
bool split_layer(const std::string& n, const std::string& prefix, std::string& idx, std::string& rest) {
  if (n.rfind(prefix, 0) != 0) return false;
  const size_t dot = n.find('.', prefix.size());
  if (dot == std::string::npos) return false;
  idx = n.substr(prefix.size(), dot - prefix.size());
  rest = n.substr(dot + 1);
  return !idx.empty() && idx.size() < 6 && idx.find_first_not_of("0123456789") == std::string::npos;
}

}  // namespace

std::string hf_to_canonical(const std::string& n) {
  for (const auto& [c, h] : kGlobal) {
    if (n == h) return c;
  }
  std::string idx, rest;
  if (split_layer(n, "model.layers.", idx, rest)) {
    for (const auto& [c, h] : kLayer) {
      if (rest == h) return "blk." + idx + "." + c;
    }
  }
  return n;
}

std::string canonical_to_hf(const std::string& n) {
  for (const auto& [c, h] : kGlobal) {
    if (n == c) return h;
  }
  std::string idx, rest;
  if (split_layer(n, "blk.", idx, rest)) {
    for (const auto& [c, h] : kLayer) {
      if (rest == c) return "model.layers." + idx + "." + h;
    }
  }
  fail("tensor '", n, "' has no Hugging Face name");
}

}  // namespace cc

// The step graph: a model's forward ops in execution order, each declaring its inputs,
// its outputs and the tensors its backward needs (its saved tensors). The backward
// order is the reverse. From this the runtime knows, for every tensor, its size, its
// producer, its forward lifetime and its first and last backward use — which is what
// memory policies (keep, recompute, compress) are planned over.
//
// The graph is static for one batch shape (B,T). It refers to tensors by TensorId;
// the runtime binds ids to storage through an OpEnv.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "adacc/core/context.h"
#include "adacc/core/tensor.h"
#include "adacc/model/config.h"

namespace adacc::model {

using TensorId = int;
inline constexpr TensorId kNoTensor = -1;

enum class TensorKind : std::uint8_t {
  input,       // tokens, targets: given by the caller each step
  param,       // a parameter view; its gradient is a parameter gradient
  activation,  // produced by an op during the step
};

// What a tensor is, so that codecs and planners can key on it.
enum class TensorRole : std::uint8_t {
  tokens,
  targets,
  param,
  residual,    // the residual stream (embedding output, residual adds)
  norm_out,    // LayerNorm output (input of a linear layer)
  norm_stats,  // LayerNorm mean / rstd
  qkv,         // fused attention input (B,T,3C)
  attn_probs,  // softmax probabilities (B,H,T,T), naive attention
  attn_lse,    // log-sum-exp (B,H,T), flash attention
  attn_out,    // attention output (input of the projection)
  linear_out,  // output of a projection (input of a residual add)
  gelu_in,     // fc output
  gelu_out,    // GELU output (input of fc_proj)
  losses,      // per-position losses (B,T)
  loss_grad,   // gradient of the loss w.r.t. the final LayerNorm output
};

inline constexpr int kNumTensorRoles = static_cast<int>(TensorRole::loss_grad) + 1;

std::string_view tensor_role_name(TensorRole role);

// What a saved tensor holds when a backward op reads it: the tensor itself, or (for the
// input of a GELU stored by a GELU-derivative codec) gelu'(x) in its place, which is all
// the GELU backward needs.
enum class SavedForm : std::uint8_t { value, gelu_derivative };

struct TensorInfo {
  std::string name;  // "h3.fc.out", "lnf.out", "transformer.h.3.mlp.c_fc.weight", ...
  Shape shape;
  DType dtype = DType::f32;
  TensorKind kind = TensorKind::activation;
  TensorRole role = TensorRole::residual;
  int layer = -1;        // block index, -1 outside the blocks
  int producer = -1;     // index of the op that produces it, -1 for inputs and params
  int param_index = -1;  // for params: index into ParamSet::named()

  std::size_t nbytes() const {
    return static_cast<std::size_t>(shape_numel(shape)) * dtype_size(dtype);
  }
};

// Whether a forward pass is followed by a backward (training) or not (evaluation).
enum class Pass : std::uint8_t { train, eval };

// What an op sees of the tensors: the runtime implements it.
class OpEnv {
 public:
  virtual ~OpEnv() = default;
  virtual Context& ctx() = 0;
  virtual Pass pass() const = 0;
  // The value of an input, parameter or activation (in the backward: a saved one).
  virtual const Tensor& value(TensorId id) = 0;
  // Storage for an output of the op being run (allocated on first call).
  virtual Tensor& output(TensorId id) = 0;
  // The gradient of a tensor, zero-initialised on first use; backward ops add into it.
  virtual Tensor& grad(TensorId id) = 0;
  // The loss op reports the step's mean loss here.
  virtual void set_loss(float loss) = 0;
  // What value(id) holds in the backward (see SavedForm); ops that can use a derived form
  // ask, the others are never given one (runtime::validate rejects such plans).
  virtual SavedForm form(TensorId /*id*/) const { return SavedForm::value; }
};

class OpNode {
 public:
  OpNode(std::string name, int layer) : name_(std::move(name)), layer_(layer) {}
  virtual ~OpNode() = default;

  // "layernorm", "linear", "attention", ...
  virtual std::string_view kind() const = 0;
  virtual void forward(OpEnv& env) const = 0;
  virtual void backward(OpEnv& env) const = 0;
  // Floating-point operations of the forward and of the backward (matmul-dominated
  // ops count 2*M*N*K per matmul; elementwise ops count nothing).
  virtual double forward_flops() const { return 0; }
  virtual double backward_flops() const { return 0; }
  // Bytes of workspace the forward (in `pass`) and the backward take from the allocator
  // while they run, as the allocator accounts them, for `threads` threads.
  virtual std::size_t forward_workspace(Pass pass, int threads) const { return 0; }
  virtual std::size_t backward_workspace(int threads) const { return 0; }
  // Whether the forward in `pass` writes this output (the fused loss writes its input's
  // gradient only when training).
  virtual bool produces(TensorId id, Pass pass) const { return true; }
  // Whether the op can be re-run in the backward to rebuild its outputs. The fused lm-head +
  // loss cannot: its forward adds into the gradient of the tied embedding (dwte), so a re-run
  // would count that gradient twice.
  virtual bool recomputable() const { return true; }
  // Whether the backward can read a saved tensor stored as `form` instead of its value (the
  // GELU backward takes gelu'(x) in place of x; every other op needs the value).
  virtual bool accepts_saved_form(SavedForm form) const { return form == SavedForm::value; }
  // Whether the backward reads (and so first allocates) the gradient of the op's first
  // output. Every op's does but the fused lm-head + loss's, whose input gradient was made in
  // its forward. (Every backward adds into the gradients of its activation inputs.)
  virtual bool backward_reads_output_grad() const { return true; }

  const std::string& name() const { return name_; }
  int layer() const { return layer_; }
  const std::vector<TensorId>& inputs() const { return inputs_; }  // activations, params
  const std::vector<TensorId>& outputs() const { return outputs_; }
  // What the backward reads besides parameters and gradients: activations and inputs.
  const std::vector<TensorId>& saved() const { return saved_; }

 protected:
  std::vector<TensorId> inputs_;
  std::vector<TensorId> outputs_;
  std::vector<TensorId> saved_;

 private:
  std::string name_;
  int layer_;
};

class StepGraph {
 public:
  TensorId add_tensor(TensorInfo info);
  // Appends an op; records it as the producer of its outputs. Returns its index.
  int add_op(std::unique_ptr<OpNode> op);

  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  const TensorInfo& tensor(TensorId id) const { return tensors_.at(static_cast<std::size_t>(id)); }
  const std::vector<std::unique_ptr<OpNode>>& ops() const { return ops_; }
  const OpNode& op(int index) const { return *ops_.at(static_cast<std::size_t>(index)); }
  // Throws InvalidArgument if no tensor has this name.
  TensorId find(std::string_view name) const;

  // The model the graph was built from (build_gpt2_graph); empty for graphs built by hand.
  std::optional<ModelConfig> config;
  TensorId tokens = kNoTensor;   // (B,T) int32
  TensorId targets = kNoTensor;  // (B,T) int32
  int batch = 0, seq = 0;

 private:
  std::vector<TensorInfo> tensors_;
  std::vector<std::unique_ptr<OpNode>> ops_;
};

// Lifetimes derived from the graph, in op indices (forward order).
struct TensorLifetime {
  int last_forward_use = -1;    // last op that reads it in the forward (or its producer)
  int first_backward_use = -1;  // highest index among ops that save it (-1: not saved)
  int last_backward_use = -1;   // lowest index among ops that save it
};

std::vector<TensorLifetime> analyze_lifetimes(const StepGraph& graph);

}  // namespace adacc::model

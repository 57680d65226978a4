// Arena: one allocation sliced by a table of named specs (llm.c style). Parameters, gradients,
// optimizer moments and activations each live in one arena, so a checkpoint is one write, a
// zero-grad is one memset, and global-norm clipping or AdamW can walk one flat buffer.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "storage.h"
#include "tensor.h"

namespace dalle {

struct ArenaSpec {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
};

class Arena {
 public:
  // Every slice starts on a 64-byte boundary; total size is the sum of padded slices.
  static Status create(Device device, std::vector<ArenaSpec> specs, std::unique_ptr<Arena>* out);

  size_t size() const { return specs_.size(); }
  const ArenaSpec& spec(size_t i) const { return specs_[i]; }
  size_t offset_bytes(size_t i) const { return offsets_[i]; }
  TensorView view(size_t i) const;
  // Index of the named slice, or -1.
  long find(const std::string& name) const;
  const std::shared_ptr<Storage>& storage() const { return storage_; }
  size_t total_bytes() const { return storage_->bytes(); }

  // Byte offsets for the specs, as Arena::create lays them out; exposed so the bindings can
  // build views sharing one Storage.
  static Status plan(const std::vector<ArenaSpec>& specs, std::vector<size_t>* offsets,
                     size_t* total);

 private:
  std::vector<ArenaSpec> specs_;
  std::vector<size_t> offsets_;
  std::shared_ptr<Storage> storage_;
};

}  // namespace dalle

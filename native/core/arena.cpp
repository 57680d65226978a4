#include "arena.h"

namespace dalle {

Status Arena::plan(const std::vector<ArenaSpec>& specs, std::vector<size_t>* offsets,
                   size_t* total) {
  offsets->clear();
  size_t at = 0;
  for (const ArenaSpec& s : specs) {
    if (s.shape.size() > static_cast<size_t>(kMaxDims))
      return make_status(StatusCode::kInvalidArgument, "arena: '%s' has more than %d dims",
                         s.name.c_str(), kMaxDims);
    size_t n = 1;
    for (int64_t d : s.shape) {
      if (d <= 0)
        return make_status(StatusCode::kInvalidArgument, "arena: '%s' has a non-positive dim",
                           s.name.c_str());
      n *= static_cast<size_t>(d);
    }
    offsets->push_back(at);
    at += (n * dtype_size(s.dtype) + 63) / 64 * 64;
  }
  *total = at;
  return Status::Ok();
}

Status Arena::create(Device device, std::vector<ArenaSpec> specs, std::unique_ptr<Arena>* out) {
  std::unique_ptr<Arena> a(new Arena());
  size_t total = 0;
  DALLE_RETURN_IF_ERROR(plan(specs, &a->offsets_, &total));
  DALLE_RETURN_IF_ERROR(Storage::create(device, total, &a->storage_));
  a->specs_ = std::move(specs);
  *out = std::move(a);
  return Status::Ok();
}

TensorView Arena::view(size_t i) const {
  const ArenaSpec& s = specs_[i];
  char* base = static_cast<char*>(storage_->data()) + offsets_[i];
  return make_view(base, s.dtype, storage_->device(), s.shape.data(), static_cast<int>(s.shape.size()));
}

long Arena::find(const std::string& name) const {
  for (size_t i = 0; i < specs_.size(); ++i)
    if (specs_[i].name == name) return static_cast<long>(i);
  return -1;
}

}  // namespace dalle

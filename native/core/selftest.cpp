#include "selftest.h"

namespace dalle {

namespace {
std::vector<SelfTestCase>& table() {
  static std::vector<SelfTestCase>* t = new std::vector<SelfTestCase>();
  return *t;
}
}  // namespace

bool register_cuda_selftest(SelfTestCase c) {
  table().push_back(c);
  return true;
}

const std::vector<SelfTestCase>& cuda_selftests() { return table(); }

}  // namespace dalle

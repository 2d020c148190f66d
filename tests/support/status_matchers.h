// A local StatusIs matcher (Debian's Abseil ships none).
#pragma once

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gmock/gmock.h"

namespace dpr::testing {

inline const absl::Status& GetStatus(const absl::Status& s) { return s; }
template <typename T>
const absl::Status& GetStatus(const absl::StatusOr<T>& s) {
  return s.status();
}

MATCHER_P(StatusIs, code, "") {
  const absl::Status& s = GetStatus(arg);
  *result_listener << "status is " << s.ToString();
  return s.code() == code;
}

MATCHER_P2(StatusIs, code, message_matcher, "") {
  const absl::Status& s = GetStatus(arg);
  *result_listener << "status is " << s.ToString();
  return s.code() == code &&
         ::testing::ExplainMatchResult(message_matcher, std::string(s.message()), result_listener);
}

#define ASSERT_OK(expr) ASSERT_TRUE((expr).ok()) << ::dpr::testing::GetStatus(expr).ToString()
#define EXPECT_OK(expr) EXPECT_TRUE((expr).ok()) << ::dpr::testing::GetStatus(expr).ToString()

}  // namespace dpr::testing

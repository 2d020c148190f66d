// absl::Status <-> grpc::Status keep code and message both ways.
#include "common/grpc/status_convert.h"

#include "gtest/gtest.h"

namespace dpr {
namespace {

TEST(StatusConvertTest, RoundTripsEveryCode) {
  for (int c = 0; c <= 16; ++c) {
    absl::Status s(static_cast<absl::StatusCode>(c), c == 0 ? "" : "msg");
    grpc::Status g = ToGrpcStatus(s);
    EXPECT_EQ(static_cast<int>(g.error_code()), c);
    EXPECT_EQ(FromGrpcStatus(g), s);
  }
}

TEST(StatusConvertTest, ProtoErrorCarriesCause) {
  auto e = ToProtoError(absl::ResourceExhaustedError(
                            "package 'ABC00001': write 'FileLib/1A2B/x': No space left on device"),
                        "free space on the DP");
  EXPECT_EQ(e.code(), static_cast<int>(absl::StatusCode::kResourceExhausted));
  EXPECT_EQ(e.cause(), "No space left on device");
  EXPECT_EQ(e.hint(), "free space on the DP");
}

}  // namespace
}  // namespace dpr

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

TEST(StatusConvertTest, LongMessagesAreCutAndSaySo) {
  const std::string huge(1 << 20, 'A');
  grpc::Status g = ToGrpcStatus(absl::NotFoundError("no distribution point '" + huge + "'"));
  EXPECT_EQ(g.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_LT(g.error_message().size(), kMaxStatusMessageBytes + 64);
  EXPECT_EQ(g.error_message().substr(0, 24), "no distribution point 'A");
  EXPECT_NE(
      g.error_message().find("... (" + std::to_string(huge.size() + 24 - kMaxStatusMessageBytes) +
                             " more bytes)"),
      std::string::npos)
      << g.error_message().substr(4000);
  // Short ones pass unchanged.
  EXPECT_EQ(ToGrpcStatus(absl::NotFoundError("no job 7")).error_message(), "no job 7");
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

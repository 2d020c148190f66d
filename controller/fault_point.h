// Test-only kill points. With DPR_TEST_FAULT_POINT=<point>[#<n>] in the
// environment, the n-th time (default 1st) the controller passes <point>
// ("step3.before_commit", "step7.after_PkgStatus", "step8.package_done", ...)
// it writes <data-dir>/fault.hit and stops dead, waiting to be killed
// (kill -9) by the test. Without the variable it does nothing.
#pragma once

#include <string>

#include "controller/sitedb/site_store.h"

namespace dpr::controller {

// Null when DPR_TEST_FAULT_POINT is unset.
sitedb::FaultHook FaultHookFromEnvironment(const std::string& data_dir);

}  // namespace dpr::controller

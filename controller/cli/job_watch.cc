// dpctl's job watcher: follows WatchJob, draws per-package and overall
// progress bars on a terminal, plain lines otherwise, JSON lines with -o
// json. Ctrl-C detaches (the job goes on); the last event seen is saved so
// `dpctl job watch` picks up after it. A broken connection (a restarted
// controller) is re-attached from the last event seen.
#include "controller/cli/job_watch.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <thread>

#include "common/grpc/status_convert.h"
#include "common/status/fmt_absl.h"
#include "controller/cli/commands.h"
#include "controller/cli/output.h"
#include "fmt/format.h"

namespace dpr::cli {

namespace {

namespace v1 = ::dpreassign::v1;

constexpr int kMaxBars = 6;

std::string Mib(uint64_t bytes) {
  return fmt::format("{:.1f}", static_cast<double>(bytes) / (1 << 20));
}

std::string Bar(uint64_t done, uint64_t total, int width) {
  const double f =
      total == 0 ? 0.0 : std::min(1.0, static_cast<double>(done) / static_cast<double>(total));
  const int full = static_cast<int>(f * width);
  return "[" + std::string(full, '#') + std::string(width - full, '.') + "]" +
         fmt::format(" {:3.0f}%", f * 100);
}

std::string StateFile(const std::string& controller, uint64_t job_id) {
  const char* cache = std::getenv("XDG_CACHE_HOME");
  const char* home = std::getenv("HOME");
  std::string dir =
      cache && *cache ? std::string(cache) : std::string(home ? home : "/tmp") + "/.cache";
  std::string name = controller;
  for (char& c : name) {
    if (!isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-') c = '_';
  }
  return fmt::format("{}/dpctl/{}-job-{}.seq", dir, name, job_id);
}

class Renderer {
 public:
  Renderer(OutputFormat format, bool tty)
      : format_(format), tty_(tty && format == OutputFormat::kTable) {}

  void Handle(const v1::JobEvent& e) {
    if (format_ == OutputFormat::kJson) {
      std::printf("%s\n", ToJson(e, false).c_str());
      std::fflush(stdout);
      if (e.has_finished()) finished_ = e.finished().status();
      return;
    }
    switch (e.event_case()) {
      case v1::JobEvent::kSnapshot: {
        const auto& j = e.snapshot();
        total_ = j.progress().bytes_total();
        packages_total_ = j.packages_total();
        if (!have_snapshot_) {
          base_done_ = j.progress().bytes_done();
          packages_done_ = j.packages_converted();
          Line(fmt::format("job {} '{}' {} -> {}: {} at step {}/9 ({})", j.job_id(),
                           j.server_name(), j.source_site(), j.destination_site(),
                           JobStatusText(j.status()), j.step(), j.step_name()));
          have_snapshot_ = true;
        }
        break;
      }
      case v1::JobEvent::kMessage: {
        const auto& m = e.message();
        const time_t t = static_cast<time_t>(e.time_unix_ms() / 1000);
        struct tm tm {};
        localtime_r(&t, &tm);
        char when[16];
        std::strftime(when, sizeof when, "%H:%M:%S", &tm);
        Line(fmt::format("{} {} {}", when, m.severity(), m.text()));
        break;
      }
      case v1::JobEvent::kPackageStarted:
        inflight_[e.package_started().package_id()] = e.package_started().progress();
        break;
      case v1::JobEvent::kPackageProgress:
        inflight_[e.package_progress().package_id()] = e.package_progress().progress();
        break;
      case v1::JobEvent::kPackageDone:
        inflight_.erase(e.package_done().package_id());
        base_done_ += e.package_done().progress().bytes_total();
        ++packages_done_;
        break;
      case v1::JobEvent::kPackageFailed:
        inflight_.erase(e.package_failed().package_id());
        break;
      case v1::JobEvent::kVerifyProgress:
        verify_ = e.verify_progress();
        break;
      case v1::JobEvent::kFinished: {
        const auto& f = e.finished();
        finished_ = f.status();  // first, so the bars are not drawn again
        Line(fmt::format("job {} {}{}", e.job_id(), JobStatusText(f.status()),
                         f.has_error() ? ": " + f.error().message() : ""));
        break;
      }
      default:
        break;
    }
    Draw(false);
  }

  // Notes about the watch itself go to stderr, keeping stdout one JSON
  // document per line.
  void Note(const std::string& text) {
    if (format_ == OutputFormat::kJson) {
      std::fprintf(stderr, "%s\n", text.c_str());
    } else {
      Line(text);
    }
  }
  void Finish() { Draw(true); }
  std::optional<v1::JobStatus> finished() const { return finished_; }

 private:
  void Erase() {
    if (!tty_ || drawn_ == 0) return;
    std::printf("\r\x1b[%dA\x1b[J", drawn_);
    drawn_ = 0;
  }
  void Line(const std::string& text) {
    Erase();
    std::printf("%s\n", text.c_str());
    std::fflush(stdout);
    Draw(true);
  }
  void Draw(bool force) {
    if (!tty_ || !have_snapshot_ || finished_) return;
    const auto now = std::chrono::steady_clock::now();
    if (!force && now - last_draw_ < std::chrono::milliseconds(100)) return;
    last_draw_ = now;
    Erase();
    uint64_t done = base_done_;
    int shown = 0;
    for (const auto& [id, p] : inflight_) {
      done += p.bytes_done();
      // A screenful of bars helps nobody: the first few, then a count.
      if (++shown > kMaxBars) continue;
      std::printf("  %-10s %s %s/%s MiB\n", id.c_str(),
                  Bar(p.bytes_done(), p.bytes_total(), 24).c_str(), Mib(p.bytes_done()).c_str(),
                  Mib(p.bytes_total()).c_str());
      ++drawn_;
    }
    if (shown > kMaxBars) {
      std::printf("  ... and %d more package(s) in progress\n", shown - kMaxBars);
      ++drawn_;
    }
    const double secs = std::chrono::duration<double>(now - start_).count();
    const double rate =
        secs > 0.5 ? static_cast<double>(done - std::min(done, first_done_)) / secs : 0;
    std::string eta = "-";
    if (rate > 0 && total_ > done) {
      const auto s = static_cast<int64_t>(static_cast<double>(total_ - done) / rate);
      eta = fmt::format("{}:{:02}", s / 60, s % 60);
    }
    std::printf("  overall    %s %u/%u packages, %s/%s MiB, %.1f MiB/s, ETA %s\n",
                Bar(done, total_, 24).c_str(), packages_done_, packages_total_, Mib(done).c_str(),
                Mib(total_).c_str(), rate / (1 << 20), eta.c_str());
    ++drawn_;
    if (verify_) {
      const v1::VerifyProgress& v = *verify_;
      std::printf("  library    %s %s\n", Bar(v.bytes_hashed(), v.bytes_expected(), 24).c_str(),
                  VerifyProgressText(v).c_str());
      ++drawn_;
    }
    if (first_draw_) {
      first_done_ = done;
      first_draw_ = false;
    }
    std::fflush(stdout);
  }

  OutputFormat format_;
  bool tty_;
  bool have_snapshot_ = false;
  std::optional<v1::JobStatus> finished_;
  std::map<std::string, v1::Progress> inflight_;
  std::optional<v1::VerifyProgress> verify_;  // step 9, as the agent checks
  uint64_t base_done_ = 0, total_ = 0, first_done_ = 0;
  uint32_t packages_done_ = 0, packages_total_ = 0;
  bool first_draw_ = true;
  int drawn_ = 0;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
  std::chrono::steady_clock::time_point last_draw_{};
};

// The call in progress, guarded so the cancelling thread never touches a
// context that is being destroyed.
std::mutex g_context_mu;
grpc::ClientContext* g_context = nullptr;
std::atomic<bool> g_detached{false};
std::atomic<bool> g_watch_done{false};
int g_wake[2] = {-1, -1};

// Async-signal-safe: sets a flag and wakes the thread that cancels the call.
void OnSigint(int) {
  g_detached = true;
  char c = 1;
  (void)!::write(g_wake[1], &c, 1);
}

}  // namespace

uint64_t LoadLastSeq(const std::string& controller, uint64_t job_id) {
  std::ifstream in(StateFile(controller, job_id));
  uint64_t seq = 0;
  if (in >> seq) return seq;
  return 0;
}

void SaveLastSeq(const std::string& controller, uint64_t job_id, uint64_t seq) {
  const std::string path = StateFile(controller, job_id);
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
  std::ofstream out(path, std::ios::trunc);
  out << seq << "\n";
}

int WatchJob(v1::AdminService::Stub& stub, const std::string& controller, uint64_t job_id,
             uint64_t after_seq, OutputFormat format) {
  Renderer r(format, ::isatty(STDOUT_FILENO) == 1);
  // Ctrl-C detaches: the handler wakes a thread that cancels the call (gRPC
  // threads already exist, so blocking the signal here would not do).
  std::thread canceller;
  if (::pipe(g_wake) == 0) {
    struct sigaction sa {};
    sa.sa_handler = OnSigint;
    sigemptyset(&sa.sa_mask);
    ::sigaction(SIGINT, &sa, nullptr);
    canceller = std::thread([] {
      char c;
      while (::read(g_wake[0], &c, 1) < 0 && errno == EINTR) {
      }
      if (g_watch_done) return;
      std::lock_guard<std::mutex> l(g_context_mu);
      if (g_context != nullptr) g_context->TryCancel();
    });
  }
  // Stops the canceller before returning, so no thread is inside gRPC
  // while the process exits.
  struct StopCanceller {
    std::thread& t;
    ~StopCanceller() {
      if (!t.joinable()) return;
      g_watch_done = true;
      char c = 0;
      (void)!::write(g_wake[1], &c, 1);
      t.join();
    }
  } stop_canceller{canceller};

  uint64_t last = after_seq;
  int failures = 0;
  for (;;) {
    grpc::ClientContext ctx;
    {
      std::lock_guard<std::mutex> l(g_context_mu);
      g_context = &ctx;
    }
    if (g_detached) ctx.TryCancel();
    v1::WatchJobRequest req;
    req.set_job_id(job_id);
    req.set_after_seq(last);
    auto reader = stub.WatchJob(&ctx, req);
    v1::JobEvent e;
    bool got = false;
    while (reader->Read(&e)) {
      got = true;
      failures = 0;
      if (e.has_message()) last = std::max<uint64_t>(last, e.seq());
      r.Handle(e);
    }
    grpc::Status st = reader->Finish();
    {
      std::lock_guard<std::mutex> l(g_context_mu);
      g_context = nullptr;
    }
    SaveLastSeq(controller, job_id, last);
    if (g_detached) {
      r.Finish();
      std::fprintf(stderr,
                   "detached from job %llu after event %llu; it goes on. Follow it again with "
                   "'dpctl job watch %llu'\n",
                   static_cast<unsigned long long>(job_id), static_cast<unsigned long long>(last),
                   static_cast<unsigned long long>(job_id));
      return kExitOk;
    }
    if (auto end = r.finished()) return *end == v1::JOB_STATUS_COMPLETED ? kExitOk : kExitFailure;
    if (st.ok() || st.error_code() == grpc::StatusCode::UNAVAILABLE ||
        st.error_code() == grpc::StatusCode::CANCELLED) {
      // The controller went away (or restarted): re-attach after the last
      // event seen, for up to two minutes.
      if (++failures > 120) {
        return ReportError(absl::UnavailableError(fmt::format(
            "lost the controller while watching job {}: {}", job_id, st.error_message())));
      }
      if (failures == 1 || got) r.Note("(connection to the controller lost; re-attaching...)");
      std::this_thread::sleep_for(std::chrono::seconds(1));
      continue;
    }
    return ReportError(RpcError(fmt::format("watching job {}", job_id), st));
  }
}

}  // namespace dpr::cli

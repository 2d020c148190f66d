#include "controller/reassign/job_events.h"

#include <chrono>

namespace dpr::reassign {

namespace {
constexpr size_t kMaxQueued = 10000;
}

bool JobSubscription::Next(dpreassign::v1::JobEvent* out, int timeout_ms) {
  std::unique_lock<std::mutex> l(mu_);
  if (!cv_.wait_for(l, std::chrono::milliseconds(timeout_ms), [&] { return !queue_.empty(); })) {
    return false;
  }
  *out = std::move(queue_.front());
  queue_.pop_front();
  return true;
}

void JobSubscription::Push(const dpreassign::v1::JobEvent& e) {
  {
    std::lock_guard<std::mutex> l(mu_);
    if (queue_.size() >= kMaxQueued && e.has_package_progress()) return;
    queue_.push_back(e);
  }
  cv_.notify_one();
}

JobSubscription::~JobSubscription() { owner_->Unsubscribe(this); }

std::unique_ptr<JobSubscription> JobEvents::Subscribe(int64_t job_id) {
  std::unique_ptr<JobSubscription> s(new JobSubscription(this, job_id));
  std::lock_guard<std::mutex> l(mu_);
  subs_[job_id].insert(s.get());
  return s;
}

void JobEvents::Unsubscribe(JobSubscription* s) {
  std::lock_guard<std::mutex> l(mu_);
  auto it = subs_.find(s->job_id_);
  if (it == subs_.end()) return;
  it->second.erase(s);
  if (it->second.empty()) subs_.erase(it);
}

void JobEvents::Publish(int64_t job_id, const dpreassign::v1::JobEvent& event) {
  std::lock_guard<std::mutex> l(mu_);
  auto it = subs_.find(job_id);
  if (it == subs_.end()) return;
  for (JobSubscription* s : it->second) s->Push(event);
}

}  // namespace dpr::reassign

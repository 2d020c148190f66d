// Live job events for watchers (dpctl reassign / job watch). Durable events
// are StatusMessages rows and carry their RecordID as `seq`, so a watcher
// that reconnects (even to a restarted controller) replays exactly what it
// missed. Progress samples and snapshots are ephemeral: they carry the seq
// of the newest durable event and are never replayed.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <set>

#include "dpreassign/v1/admin.pb.h"

namespace dpr::reassign {

class JobEvents;

// One watcher's queue. Bounded: when a slow watcher falls behind, progress
// samples are dropped first; durable events are never dropped (they can
// also be replayed from the database).
class JobSubscription {
 public:
  // Waits up to `timeout_ms` for the next event; false on timeout.
  bool Next(dpreassign::v1::JobEvent* out, int timeout_ms);
  ~JobSubscription();

 private:
  friend class JobEvents;
  JobSubscription(JobEvents* owner, int64_t job_id) : owner_(owner), job_id_(job_id) {}
  void Push(const dpreassign::v1::JobEvent& e);

  JobEvents* owner_;
  int64_t job_id_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<dpreassign::v1::JobEvent> queue_;
};

class JobEvents {
 public:
  std::unique_ptr<JobSubscription> Subscribe(int64_t job_id);
  void Publish(int64_t job_id, const dpreassign::v1::JobEvent& event);

 private:
  friend class JobSubscription;
  void Unsubscribe(JobSubscription* s);

  std::mutex mu_;
  std::map<int64_t, std::set<JobSubscription*>> subs_;
};

}  // namespace dpr::reassign

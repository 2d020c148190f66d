// Publishing a finished batch: its INIs staged, synced, renamed into place
// and committed; the previous batch's legacy files removed once its commit
// is durable.
#include "agent/importer/importer_internal.h"
#include "common/status/status_macros.h"

namespace dpr::importer::internal {

// Publishes a batch so that no final name ever points at bytes that are not
// yet durable, and legacy files go only once their package is committed:
//   stage every INI as a temp file (objects and DataLib trees are staged
//   by the workers)
//   sync   (also makes the previous batch's commit durable)
//   remove the previous batch's legacy files
//   rename objects, reference lists, DataLib trees and DataLib INIs into place
//   sync
//   rename PkgLib INIs (the commit); its sync is the next batch's first
// Two syncs a batch: an object's list can be written before the object is
// in place because nothing else can create it meanwhile (publishing_).
absl::Status Importer::StartFlush() {
  RETURN_IF_ERROR(WaitForFlush());
  if (batch_.empty()) return absl::OkStatus();
  // Every package of the batch is finalized, so each object's user count is
  // final for it: take the objects some successful package uses. Objects
  // nobody used yet stay pending; a later batch may still dedup against them.
  std::vector<std::pair<Sha256Digest, PendingObject>> objects;
  {
    std::lock_guard<std::mutex> lock(pending_mu_);
    for (auto it = pending_.begin(); it != pending_.end();) {
      if (it->second.users > 0) {
        publishing_.insert(it->first);
        objects.emplace_back(it->first, std::move(it->second));
        it = pending_.erase(it);
      } else {
        ++it;
      }
    }
  }
  batch_bytes_ = 0;
  flushing_ = std::async(std::launch::async,
                         [this, batch = std::move(batch_), objects = std::move(objects)]() mutable {
                           absl::Status s = Flush(std::move(batch), std::move(objects));
                           if (!s.ok()) {
                             std::lock_guard<std::mutex> lock(mu_);
                             if (fatal_.ok()) fatal_ = s;
                             space_cv_.notify_all();
                             work_cv_.notify_all();
                             done_cv_.notify_all();
                           }
                           return s;
                         });
  batch_.clear();
  return absl::OkStatus();
}

absl::Status Importer::WaitForFlush() {
  if (!flushing_.valid()) return absl::OkStatus();
  return flushing_.get();
}

absl::Status Importer::Flush(std::vector<std::unique_ptr<PackageState>> batch_,
                             std::vector<std::pair<Sha256Digest, PendingObject>> objects) {
  if (batch_.empty() && objects.empty()) return absl::OkStatus();
  Timer flush_timer(&summary_.seconds_publish);
  // A worker decided each of these objects was in neither FileLib nor this
  // run's pending objects, and since then only this flush may create it: a
  // worker meeting it now takes it as stored (publishing_). So each is new
  // to FileLib, and its reference list is written afresh.
  std::set<Sha256Digest> new_objects;
  for (const auto& [hash, _] : objects) new_objects.insert(hash);

  // One reference-list rewrite per object for the whole batch.
  struct Users {
    Sha256Digest hash{};
    uint64_t size = 0;
    std::vector<ContentId> ids;
  };
  std::map<Sha256Digest, Users> by_hash;
  std::map<std::string, std::vector<uint32_t>> versions;
  for (const auto& pkg : batch_) {
    for (size_t i = 0; i < pkg->tree.files.size(); ++i) {
      Users& u = by_hash[pkg->results[i].hash];
      u.hash = pkg->results[i].hash;
      u.size = pkg->tree.files[i].size;
      if (u.ids.empty() || !(u.ids.back() == pkg->id)) u.ids.push_back(pkg->id);
    }
    versions[pkg->id.package_id].push_back(pkg->id.version);
  }
  std::vector<const Users*> lists;
  for (const auto& [_, u] : by_hash) lists.push_back(&u);
  std::vector<std::pair<std::string, std::vector<uint32_t>>> commits(versions.begin(),
                                                                     versions.end());

  // Stage every INI as a temp file: reference lists, DataLib INIs, PkgLib INIs.
  const size_t n_lists = lists.size(), n_contents = batch_.size();
  std::vector<std::pair<std::string, std::string>> staged(n_lists + n_contents + commits.size());
  RETURN_IF_ERROR(SpaceError(ParallelFor(staged.size(), [&](size_t i) -> absl::Status {
    std::string rel, text;
    if (i < n_lists) {
      const Users& u = *lists[i];
      ASSIGN_OR_RETURN(auto updated, lib_.FileLibIniWithUsers(u.hash, u.size, u.ids,
                                                              new_objects.count(u.hash) > 0));
      if (!updated.has_value()) return absl::OkStatus();
      rel = contentlib::FileLibIni(ToHex(u.hash));
      text = std::move(*updated);
    } else if (i < n_lists + n_contents) {
      const PackageState& pkg = *batch_[i - n_lists];
      rel = contentlib::DataLibIni(pkg.id);
      text = ContentLibrary::DataLibIniText(pkg.record);
    } else {
      const auto& [package_id, vs] = commits[i - n_lists - n_contents];
      rel = contentlib::PkgLibIni(package_id);
      ASSIGN_OR_RETURN(text, lib_.PkgLibIniWith(package_id, vs));
    }
    ASSIGN_OR_RETURN(std::string tmp, lib_.StageFile(rel, text));
    if (options_.fsync_each_file) RETURN_IF_ERROR(lib_.FsyncPath(tmp));
    staged[i] = {std::move(tmp), std::move(rel)};
    return absl::OkStatus();
  })));

  // Makes everything staged durable, and the previous batch's commit too.
  RETURN_IF_ERROR(SpaceError(TimedSync()));
  FinishCommitted(std::move(unsynced_commit_));
  unsynced_commit_.clear();

  // Objects, reference lists, DataLib trees and INIs into place.
  const size_t n_objects = objects.size();
  RETURN_IF_ERROR(ParallelFor(n_objects + n_lists + n_contents, [&](size_t i) -> absl::Status {
    if (i < n_objects) {
      const auto& [hash, obj] = objects[i];
      if (obj.staged.empty()) return absl::OkStatus();  // hard-linked in place by the worker
      absl::Status s = lib_.PublishStaged(obj.staged, hash);
      if (absl::IsAlreadyExists(s)) {
        // Its list was written as if new: stop before anything refers to it.
        return absl::InternalError(fmt::format(
            "FileLib object {} appeared while this run was publishing it (is another import "
            "writing to this library?)",
            ToHex(hash)));
      }
      return s;
    }
    i -= n_objects;
    if (i >= n_lists) {
      PackageState& pkg = *batch_[i - n_lists];
      RETURN_IF_ERROR(lib_.PublishContentTree(pkg.id, pkg.staged_content));
      pkg.staged_content.clear();
    }
    if (staged[i].first.empty()) return absl::OkStatus();
    return lib_.PublishFile(staged[i].first, staged[i].second);
  }));
  {
    std::lock_guard<std::mutex> lock(pending_mu_);
    for (const auto& [hash, _] : objects) publishing_.erase(hash);
  }
  RETURN_IF_ERROR(SpaceError(TimedSync()));

  // The commit: PkgLib INIs. Its sync is the next flush's first, or the
  // last one of Run; the legacy files wait for it.
  for (size_t i = n_lists + n_contents; i < staged.size(); ++i) {
    RETURN_IF_ERROR(lib_.PublishFile(staged[i].first, staged[i].second));
  }
  unsynced_commit_ = std::move(batch_);
  std::lock_guard<std::mutex> lock(summary_mu_);
  ++summary_.batches;
  return absl::OkStatus();
}

void Importer::FinishCommitted(std::vector<std::unique_ptr<PackageState>> batch) {
  if (batch.empty()) return;
  // Legacy files may go now.
  std::vector<char> removed(batch.size(), 0);
  std::vector<KeptNote> kept(batch.size());
  (void)ParallelFor(batch.size(), [&](size_t i) -> absl::Status {
    bool r = false;
    if (!batch[i]->spec.keep_package_share) RemoveLegacy(*batch[i], &r, &kept[i]);
    removed[i] = r;
    return absl::OkStatus();
  });
  for (size_t i = 0; i < batch.size(); ++i) {
    const PackageState& pkg = *batch[i];
    {
      std::lock_guard<std::mutex> lock(summary_mu_);
      ++summary_.packages_done;
      summary_.files += pkg.tree.files.size();
      summary_.bytes_stored += pkg.bytes_stored;
      summary_.bytes_deduplicated += pkg.bytes_dedup;
    }
    ImportEvent e = Event(ImportEvent::Kind::kPackageDone, pkg);
    e.bytes_stored = pkg.bytes_stored;
    e.bytes_deduplicated = pkg.bytes_dedup;
    e.legacy_removed = removed[i] != 0;
    e.legacy_kept = kept[i].Text();
    Emit(e);
  }
}

absl::Status Importer::ParallelFor(size_t n, const std::function<absl::Status(size_t)>& fn) {
  std::atomic<size_t> next{0};
  std::mutex mu;
  absl::Status first;
  auto run = [&] {
    for (;;) {
      const size_t i = next.fetch_add(1);
      if (i >= n) return;
      absl::Status s = fn(i);
      if (!s.ok()) {
        std::lock_guard<std::mutex> lock(mu);
        if (first.ok()) first = std::move(s);
        next = n;  // stop handing out work
      }
    }
  };
  std::vector<std::thread> threads;
  const size_t extra = std::min<size_t>(static_cast<size_t>(jobs_), n);
  for (size_t t = 1; t < extra; ++t) threads.emplace_back(run);
  run();
  for (auto& t : threads) t.join();
  return first;
}

}  // namespace dpr::importer::internal

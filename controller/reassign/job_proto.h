// Site-database rows as the admin API's messages: one place for the
// mapping, used by the admin service and by the runner's live events.
#pragma once

#include "controller/sitedb/site_types.h"
#include "dpreassign/v1/admin.pb.h"

namespace dpr::reassign {

void JobToProto(const sitedb::UpgradeJob& job, dpreassign::v1::Job* out);
// A StatusMessages row as a durable JobEvent (seq = RecordID).
void MessageToEvent(const sitedb::StatusMessage& message, dpreassign::v1::JobEvent* out);

}  // namespace dpr::reassign

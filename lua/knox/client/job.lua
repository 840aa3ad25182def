--- knox.client.job: client:job, a resumable fleet job (knox.job). Part of
-- knox.client (mixed into the Client class).
local M = {}

--- client:job(opts) -> job. opts: op ("kme.assign_profile"), args,
-- devices (list, iterator or CSV file name), ledger (SQLite file),
-- concurrency, max_rate, chunk_size, on_progress, resend_unknown.
-- See knox.job.
function M:job(opts)
  return require("knox.job").new(self, opts)
end

return M

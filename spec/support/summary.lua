-- A busted output handler: busted's usual terminal output, then one plain
-- closing line "busted: N passed, N failed, N skipped" that CI tools read.
-- Errors in specs count as failures.
return function(options)
  local busted = require "busted"
  local handler = require "busted.outputHandlers.utfTerminal"(options)
  busted.subscribe({ "suite", "end" }, function()
    io.write(("busted: %d passed, %d failed, %d skipped\n"):format(handler.successesCount,
      handler.failuresCount + handler.errorsCount, handler.pendingsCount))
    io.flush()
    return nil, true
  end, { priority = 1000 })
  return handler
end

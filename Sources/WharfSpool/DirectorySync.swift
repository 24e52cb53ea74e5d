#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import WharfCore

/// Makes renames into a directory durable with as few `fsync`s of that directory as
/// concurrent callers allow.
///
/// A caller that renamed a file into a directory asks for a sync and gets a ticket. An
/// `fsync` that starts after the ticket was taken covers the rename, so while one sync of
/// the directory runs, the callers that arrive wait for the next one, which the first of
/// them runs for all. A sync that fails is not counted: each waiter it would have covered
/// then tries again itself, so every caller either sees a sync succeed after its rename or
/// gets an error.
final class DirectorySync: @unchecked Sendable {
    static let shared = DirectorySync()

    /// What syncs one directory: `fsyncDirectory`, or a stand-in in tests.
    private let syncDirectory: @Sendable (String) throws(WharfError) -> Void

    init(syncDirectory: @escaping @Sendable (String) throws(WharfError) -> Void = DirectorySync.fsyncDirectory) {
        self.syncDirectory = syncDirectory
    }

    // Guarded by `condition`.
    private let condition = NSCondition()
    private var directories: [String: Progress] = [:]

    private struct Progress {
        /// Tickets handed out.
        var requested: UInt64 = 0
        /// Every ticket up to this one is covered by a successful sync.
        var completed: UInt64 = 0
        var syncing = false
    }

    func sync(_ path: String) throws(WharfError) {
        condition.lock()
        defer { condition.unlock() }
        directories[path, default: Progress()].requested += 1
        let ticket = directories[path]!.requested
        while directories[path]!.completed < ticket {
            if directories[path]!.syncing {
                condition.wait()
                continue
            }
            directories[path]!.syncing = true
            let covering = directories[path]!.requested
            condition.unlock()
            let outcome = Result { () throws(WharfError) in try syncDirectory(path) }
            condition.lock()
            directories[path]!.syncing = false
            if case .success = outcome {
                directories[path]!.completed = max(directories[path]!.completed, covering)
            }
            condition.broadcast()
            try outcome.get()
        }
    }

    /// Callers of `sync(path)` not yet covered by a successful sync.
    func waiting(in path: String) -> UInt64 {
        condition.lock()
        defer { condition.unlock() }
        guard let progress = directories[path] else { return 0 }
        return progress.requested - progress.completed
    }

    static func fsyncDirectory(_ path: String) throws(WharfError) {
        let descriptor = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard descriptor >= 0 else { throw StagedFile.failure("open", path) }
        defer { close(descriptor) }
        guard fsync(descriptor) == 0 else { throw StagedFile.failure("sync", path) }
    }
}

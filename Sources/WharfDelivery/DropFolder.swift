import Foundation
import Logging
import NIOConcurrencyHelpers
import WharfCore
import WharfSpool

/// The drop folder: a file placed in `spool/outbound/{partner}/` is queued for that
/// partner once it is complete, and moved into the spool.
///
/// Complete means: its name does not start with `.` nor end in `.tmp` (write under such a
/// name, then rename), and its size and modification time were the same on two scans in
/// a row (for writers that cannot rename).
public final class DropFolder: Sendable {
    private struct Observation: Equatable {
        let size: Int64
        let modified: Date
    }

    private let outbox: Outbox
    private let spool: Spool
    private let store: any DeliveryStore
    private let logger: Logger
    private let previous = NIOLockedValueBox<[String: Observation]>([:])
    /// What was last warned about, by folder or file: a warning is logged again only when
    /// what it says changes (a drop folder naming no partner is seen once a second).
    private let warned = NIOLockedValueBox<[String: String]>([:])

    public init(store: any DeliveryStore, spool: Spool, logger: Logger) {
        self.outbox = Outbox(store: store, spool: spool)
        self.spool = spool
        self.store = store
        self.logger = logger
    }

    /// Whether the last scan saw files it will queue if the next scan finds them unchanged.
    public var hasFilesWaiting: Bool {
        previous.withLockedValue { !$0.isEmpty }
    }

    /// One scan: queues the files unchanged since the previous scan, and returns them.
    @discardableResult
    public func scan() -> [Transfer] {
        var seen: [String: Observation] = [:]
        var ready: [(path: String, partner: PartnerName)] = []
        let before = previous.withLockedValue { $0 }
        let folders = (try? FileManager.default.contentsOfDirectory(atPath: spool.dropDirectory)) ?? []
        for folder in folders.sorted() where !folder.hasPrefix(".") {
            let directory = "\(spool.dropDirectory)/\(folder)"
            guard let partner = try? PartnerName(folder), (try? store.partner(named: partner)) != nil else {
                warnOnce(about: directory, "a drop folder names no partner; its files wait") {
                    logger.warning("a drop folder names no partner; its files wait", metadata: ["folder": "\(directory)"])
                }
                continue
            }
            clearWarning(about: directory)
            for name in ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).sorted()
            where !name.hasPrefix(".") && !name.hasSuffix(".tmp") {
                let path = "\(directory)/\(name)"
                guard let attributes = try? FileManager.default.attributesOfItem(atPath: path),
                      attributes[.type] as? FileAttributeType == .typeRegular,
                      let size = attributes[.size] as? Int64 ?? (attributes[.size] as? Int).map(Int64.init),
                      let modified = attributes[.modificationDate] as? Date
                else { continue }
                let observation = Observation(size: size, modified: modified)
                if before[path] == observation {
                    ready.append((path, partner))
                } else {
                    seen[path] = observation
                }
            }
        }
        previous.withLockedValue { $0 = seen }
        var queued: [Transfer] = []
        for (path, partner) in ready {
            do {
                if let transfer = try outbox.queue(path, for: partner, move: true) {
                    queued.append(transfer)
                    clearWarning(about: path)
                    logger.info("dropped file queued", metadata: [
                        "partner": "\(partner)", "file": "\(transfer.filename)", "size": "\(transfer.size)",
                        "transfer": "\(transfer.id)",
                    ])
                }
            } catch {
                warnOnce(about: path, "\(error)") {
                    logger.error("a dropped file could not be queued", metadata: ["file": "\(path)", "error": "\(error)"])
                }
            }
        }
        // Folders and files that went away are forgotten, so that they warn again if they return.
        warned.withLockedValue { warned in
            warned = warned.filter { key, _ in FileManager.default.fileExists(atPath: key) }
        }
        return queued
    }

    /// Runs `log` unless the last warning about `subject` said the same `text`.
    private func warnOnce(about subject: String, _ text: String, _ log: () -> Void) {
        let isNew = warned.withLockedValue { warned in
            defer { warned[subject] = text }
            return warned[subject] != text
        }
        if isNew { log() }
    }

    private func clearWarning(about subject: String) {
        _ = warned.withLockedValue { $0.removeValue(forKey: subject) }
    }
}

import Foundation
import Synchronization
import Testing
import WharfCore
import WharfTestSupport
@testable import WharfSpool

@Suite struct SpoolTests {
    let directory: TemporaryDirectory
    let spool: Spool

    init() throws {
        directory = try TemporaryDirectory("wharf-spool")
        spool = Spool(root: directory.file("spool"))
        try spool.prepare()
    }

    func receipt(_ id: String, name: String = "a.txt") -> Receipt {
        Receipt(id: id, partner: "acme", filename: name, storedName: "\(id)-\(name)", size: 5,
                sha256: String(repeating: "0", count: 64), receivedAt: Date(), idempotencyKey: nil)
    }

    func stage(_ id: String, _ text: String, in spool: Spool? = nil) throws -> StagedFile {
        let staged = try (spool ?? self.spool).stage(id: id)
        try Array(text.utf8).withUnsafeBytes { bytes in try staged.write(bytes) }
        try staged.finish()
        return staged
    }

    @Test func aFileWrittenPastThePageCacheFromAlignedBuffersIsStoredWhole() throws {
        let staged = try spool.stage(id: "direct", direct: true)
        #expect(staged.isDirect, "the file system refused O_DIRECT")
        let buffer = try AlignedBuffer(capacity: 64 * 1024)
        var expected: [UInt8] = []
        // Pieces that straddle the buffers, then a last one that is no whole block.
        for step in 0..<9 {
            var piece = [UInt8](repeating: UInt8(step + 1), count: 30_000 + 997 * step)[...]
            expected += piece
            while !piece.isEmpty {
                let taken = piece.withUnsafeBytes { buffer.append($0) }
                piece = piece.dropFirst(taken)
                if buffer.isFull {
                    try staged.write(buffer.bytes)
                    buffer.removeAll()
                }
            }
        }
        #expect(staged.isDirect, "an aligned write turned direct writes off")
        try staged.write(buffer.bytes)
        #expect(!staged.isDirect)
        try staged.finish()
        #expect(expected.count % AlignedBuffer.alignment != 0 && expected.count > 3 * buffer.capacity)
        #expect(try Data(contentsOf: URL(fileURLWithPath: staged.path)) == Data(expected))
    }

    @Test func aFileLargerThanSeveralWritebackStepsIsStoredWhole() throws {
        let staged = try spool.stage(id: "large")
        var expected: [UInt8] = []
        for step in 0..<40 {
            let chunk = [UInt8](repeating: UInt8(step), count: 512 * 1024 + step)
            expected += chunk
            try chunk.withUnsafeBytes { bytes in try staged.write(bytes) }
        }
        try staged.finish()
        #expect(Int64(expected.count) > 2 * Writeback.step)
        #expect(try Data(contentsOf: URL(fileURLWithPath: staged.path)) == Data(expected))
    }

    @Test func installMovesTheFileIntoThePartnersInbox() throws {
        let staged = try stage("r1", "hello")
        try staged.install(in: spool, receipt: receipt("r1"))
        #expect(try String(contentsOfFile: "\(spool.inboxDirectory(for: "acme"))/r1-a.txt", encoding: .utf8) == "hello")
        #expect(try FileManager.default.contentsOfDirectory(atPath: spool.stagingDirectory).isEmpty)
    }

    @Test func recoveryFinishesCommittedUploadsAndRemovesTheRest() throws {
        _ = try stage("committed", "whole")
        _ = try stage("unacknowledged", "half")
        try "junk".write(toFile: "\(spool.stagingDirectory)/stray", atomically: false, encoding: .utf8)

        let recovery = try spool.recover { id throws(WharfError) in id == "committed" ? receipt("committed") : nil }

        #expect(recovery.completed == ["committed"])
        #expect(recovery.removed == ["stray", "unacknowledged.part"])
        #expect(try FileManager.default.contentsOfDirectory(atPath: spool.stagingDirectory).isEmpty)
        #expect(try FileManager.default.contentsOfDirectory(atPath: spool.inboxDirectory(for: "acme")) == ["committed-a.txt"])
    }

    @Test func nodesStageApartAndRecoverOnlyTheirOwnUntilOneRecoversADeadNodes() throws {
        let a = Spool(root: spool.root, node: try NodeName("gw-a"))
        let b = Spool(root: spool.root, node: try NodeName("gw-b"))
        try a.prepare()
        try b.prepare()
        #expect(a.stagingDirectory == "\(spool.root)/tmp/gw-a")
        _ = try stage("mine", "a's", in: a)
        _ = try stage("in-flight", "b's, still arriving", in: b)
        _ = try stage("committed", "b's, committed", in: b)
        // node a restarts: b's uploads are not a's to touch, nor the single-node spool's.
        #expect(try a.recover { _ throws(WharfError) in nil }.removed == ["mine.part"])
        #expect(try spool.recover { _ throws(WharfError) in nil }.removed.isEmpty)
        #expect(try FileManager.default.contentsOfDirectory(atPath: b.stagingDirectory).sorted() == ["committed.part", "in-flight.part"])
        // b died: the leader recovers its directory, finishing what was committed.
        let rescued = try a.asNode(try NodeName("gw-b")).recover { id throws(WharfError) in id == "committed" ? receipt("committed") : nil }
        #expect(rescued.completed == ["committed"])
        #expect(rescued.removed == ["in-flight.part"])
        #expect(try FileManager.default.contentsOfDirectory(atPath: spool.inboxDirectory(for: "acme")) == ["committed-a.txt"])
    }

    @Test(arguments: ["", "../escape", ".hidden", "a/b", String(repeating: "n", count: 64), "bad\u{1B}name"])
    func aNodeNameThatIsNotASafeDirectoryNameIsRefused(name: String) {
        #expect(throws: WharfError.self) { try NodeName(name) }
    }

    @Test func aGeneratedNodeNameIsTheHostsWithASuffix() throws {
        #expect(NodeName.generated(hostName: "gw1.example.net", suffix: 0x2a).rawValue == "gw1-002a")
        #expect(NodeName.generated(hostName: "...", suffix: 0xbeef).rawValue == "node-beef")
        #expect(try NodeName("gw-1.eu_west").rawValue == "gw-1.eu_west")
    }

    /// A committed file whose move fails (here a stored name an earlier version made too
    /// long for the file system) is moved aside; the others are finished and start goes on.
    @Test func recoveryQuarantinesWhatItCannotFinishAndFinishesTheRest() throws {
        _ = try stage("long", "kept")
        _ = try stage("fine", "whole")
        let tooLong = Receipt(
            id: "long", partner: "acme", filename: "x", storedName: "long-" + String(repeating: "n", count: 260), size: 4,
            sha256: String(repeating: "0", count: 64), receivedAt: Date(), idempotencyKey: nil
        )
        let recovery = try spool.recover { id throws(WharfError) in id == "long" ? tooLong : id == "fine" ? receipt("fine") : nil }
        #expect(recovery.completed == ["fine"])
        #expect(recovery.quarantined.map(\.name) == ["long.part"])
        #expect(recovery.quarantined.first?.reason.contains("File name too long") == true, "\(recovery.quarantined)")
        #expect(try String(contentsOfFile: "\(spool.quarantineDirectory)/long.part", encoding: .utf8) == "kept")
        #expect(try FileManager.default.contentsOfDirectory(atPath: spool.inboxDirectory(for: "acme")) == ["fine-a.txt"])
    }

    @Test(arguments: [
        (String(repeating: "n", count: 255), ""),
        (String(repeating: "n", count: 240) + ".xml", ".xml"),
        (String(repeating: "é", count: 120) + ".csv", ".csv"),          // 2 bytes each: the cut must fall between them
        (String(repeating: "n", count: 200) + "." + String(repeating: "e", count: 50), ""),  // no short extension to keep
    ])
    func storedNamesFitTheFileSystemAndKeepTheExtension(filename: String, suffix: String) throws {
        let id = "20261201T235926Z-0e03b01e"
        let name = Spool.storedName(id: id, filename: filename)
        #expect(name.utf8.count <= 255)
        #expect(name.hasPrefix("\(id)-"))
        #expect(name.hasSuffix("~" + suffix))
        #expect(String(validating: Array(name.utf8), as: UTF8.self) != nil)
        let sent = Spool.storedName(id: id, filename: filename, reserving: 8)
        #expect(sent.utf8.count <= 247)
        // It can be created.
        #expect(FileManager.default.createFile(atPath: directory.file(name), contents: Data()))
        // A name that fits is kept as it is.
        #expect(Spool.storedName(id: id, filename: "short.xml") == "\(id)-short.xml")
    }

    @Test func discardRemovesTheStagedFile() throws {
        let staged = try spool.stage(id: "gone")
        staged.discard()
        #expect(try FileManager.default.contentsOfDirectory(atPath: spool.stagingDirectory).isEmpty)
    }

    @Test func aSecondStageOfTheSameIDIsRefused() throws {
        let staged = try spool.stage(id: "same")
        defer { staged.discard() }
        #expect(throws: WharfError.self) { try spool.stage(id: "same") }
    }
}

@Suite struct SentRetentionTests {
    @Test func deliveredFilesOlderThanTheRetentionAreDeleted() throws {
        let directory = try TemporaryDirectory("wharf-sent")
        let spool = Spool(root: directory.file("spool"))
        try spool.prepare()
        let partner = "\(spool.sentDirectory)/acme"
        try FileManager.default.createDirectory(atPath: partner, withIntermediateDirectories: true)
        try "old".write(toFile: "\(partner)/old.xml", atomically: false, encoding: .utf8)
        try "new".write(toFile: "\(partner)/new.xml", atomically: false, encoding: .utf8)
        try FileManager.default.setAttributes([.modificationDate: Date().addingTimeInterval(-8 * 86_400)], ofItemAtPath: "\(partner)/old.xml")

        #expect(spool.pruneSent(olderThan: 7 * 86_400) == 1)
        #expect(try FileManager.default.contentsOfDirectory(atPath: partner) == ["new.xml"])
    }
}

@Suite struct DirectorySyncTests {
    @Test func concurrentSyncsOfOneDirectoryAllReturnAndAMissingDirectoryIsAnError() throws {
        let directory = try TemporaryDirectory("wharf-dirsync")
        let spool = Spool(root: directory.path)
        try spool.prepare()
        let failed = Mutex(0)
        // Threads of their own, as the blocking-thread pools call it; a wait that never
        // ends fails the test rather than hanging it.
        let callers = DispatchGroup()
        for _ in 0..<32 {
            callers.enter()
            Thread {
                defer { callers.leave() }
                do {
                    try DirectorySync.shared.sync(spool.inboxDirectory)
                } catch {
                    failed.withLock { $0 += 1 }
                }
            }.start()
        }
        #expect(callers.wait(timeout: .now() + 30) == .success)
        #expect(failed.withLock { $0 } == 0)
        #expect(throws: WharfError.self) { try DirectorySync.shared.sync("\(directory.path)/missing") }
    }

    @Test func callersThatArriveDuringASyncShareTheNextOne() throws {
        let syncs = Mutex(0)
        let release = DispatchSemaphore(value: 0)
        let sync = DirectorySync { _ throws(WharfError) in
            // The first sync holds until every caller is waiting; the rest return at once.
            if syncs.withLock({ $0 += 1; return $0 }) == 1 { _ = release.wait(timeout: .now() + 30) }
        }
        let callers = DispatchGroup()
        for _ in 0..<32 {
            callers.enter()
            Thread {
                defer { callers.leave() }
                try? sync.sync("/spool/inbox")
            }.start()
        }
        let deadline = Date().addingTimeInterval(30)
        while sync.waiting(in: "/spool/inbox") < 32 && Date() < deadline { usleep(1_000) }
        #expect(sync.waiting(in: "/spool/inbox") == 32)
        release.signal()
        #expect(callers.wait(timeout: .now() + 30) == .success)
        // The first caller's sync, then one for the 31 that came while it ran.
        #expect(syncs.withLock { $0 } == 2)
        #expect(sync.waiting(in: "/spool/inbox") == 0)
    }
}

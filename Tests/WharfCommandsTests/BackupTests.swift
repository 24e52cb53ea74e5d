import Crypto
import Foundation
import Testing
import WharfStore
import WharfTestSupport

/// `wharf backup` of a home that is serving, and `wharf restore` of what it wrote.
@Suite struct BackupTests {
    static func sha256(_ path: String) throws -> String {
        SHA256.hash(data: try Data(contentsOf: URL(fileURLWithPath: path))).map { String(format: "%02x", $0) }.joined()
    }

    @Test func aBackupTakenUnderUploadLoadRestoresToAHomeThatServes() async throws {
        let gateway = try await TestGateway.start()
        let files = try (0..<40).map { try gateway.randomFile("load-\($0).bin", size: 20_000 + $0 * 1_000) }
        let backup = try TemporaryDirectory("wharf-backup").file("copy")
        let registry = try gateway.registry

        let uploads = Task {
            try await withThrowingTaskGroup(of: Int.self) { group in
                for (index, file) in files.enumerated() {
                    group.addTask { try await gateway.put(file.path, as: "load-\(index).bin").status }
                    if index >= 4 { _ = try await group.next() }
                }
                return try await group.reduce(into: [Int]()) { $0.append($1) }
            }
        }
        // Back up once uploads are arriving, while more are.
        try await Wait.until(timeout: .seconds(60), "the first uploads") { try registry.receipts(limit: 1_000).count >= 5 }
        let backedUp = try await gateway.fixture.wharf("backup", "--to", backup, "--with-spool")
        #expect(backedUp.succeeded, "\(backedUp.stderr)")
        _ = try await uploads.value
        try await gateway.stop()
        #expect(try registry.receipts(limit: 1_000).count == 40)

        let restored = try WharfHomeFixture()
        let result = try await restored.wharf("restore", "--from", backup)
        #expect(result.succeeded, "\(result.stderr)")

        // The copy is one consistent moment: its audit chain is whole, and every receipt it
        // holds has its file, with the digest the receipt gives.
        #expect(try await restored.wharf("audit", "verify").succeeded)
        let copy = try Registry.open(at: "\(restored.home)/wharf.sqlite")
        let receipts = try copy.receipts(limit: 1_000)
        #expect(receipts.count >= 5 && receipts.count <= 40)
        for receipt in receipts {
            #expect(try Self.sha256("\(restored.home)/spool/inbox/acme/\(receipt.storedName)") == receipt.sha256)
        }

        // And it serves, to the partner's bundle as it was.
        let again = try await TestGateway.start(fixture: restored)
        let file = try again.randomFile("after-restore.txt", size: 100)
        #expect(try await again.put(file.path, as: "after-restore.txt").status == 201)
        try await again.stop()
    }

    @Test func refusalsLeaveTheHomeAndTheBackupAsTheyWere() throws {
        let fixture = try TestGateway.homeWithAcme()
        let directory = try TemporaryDirectory("wharf-backup")

        // Into a directory that holds something.
        let occupied = directory.file("occupied")
        try FileManager.default.createDirectory(atPath: occupied, withIntermediateDirectories: true)
        try "keep me".write(toFile: "\(occupied)/notes.txt", atomically: true, encoding: .utf8)
        let refused = try fixture.wharf("backup", "--to", occupied)
        #expect(!refused.succeeded)
        #expect(refused.stderr.contains("exists and is not empty"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: occupied) == ["notes.txt"])

        let backup = directory.file("good")
        #expect(try fixture.wharf("backup", "--to", backup).succeeded)
        #expect(try !FileManager.default.contentsOfDirectory(atPath: directory.path).contains { $0.contains("partial") })

        // Into a home that is not empty.
        let before = try fixture.snapshot()
        let intoUsed = try fixture.wharf("restore", "--from", backup)
        #expect(!intoUsed.succeeded)
        #expect(intoUsed.stderr.contains("exists and is not empty"))
        #expect(try fixture.snapshot() == before)

        // From a damaged backup, or from something that is not one: nothing is created.
        let damaged = directory.file("damaged")
        try FileManager.default.copyItem(atPath: backup, toPath: damaged)
        try "-----BEGIN CERTIFICATE-----\nforged\n".write(toFile: "\(damaged)/pki/ca.crt", atomically: true, encoding: .utf8)
        for (source, says) in [(damaged, "the backup is damaged: pki/ca.crt"), (occupied, "is not a Wharf backup")] {
            let target = try WharfHomeFixture()
            let result = try target.wharf("restore", "--from", source)
            #expect(!result.succeeded)
            #expect(result.stderr.contains(says), "\(result.stderr)")
            #expect(!FileManager.default.fileExists(atPath: target.home))
            #expect(try !FileManager.default.contentsOfDirectory(atPath: target.directory.path).contains { $0.contains("partial") })
        }
    }

    /// What a downgrade does: the older build refuses the newer registry and says why.
    @Test func aRegistryMigratedByANewerWharfIsRefused() throws {
        let fixture = try TestGateway.homeWithAcme()
        let inserted = try Command.run("sqlite3", [
            "\(fixture.home)/wharf.sqlite", "INSERT INTO grdb_migrations (identifier) VALUES ('v99-from-the-future')",
        ])
        #expect(inserted.succeeded, "\(inserted.stderr)")
        for command in [["status"], ["partner", "list"], ["serve", "--listen", "127.0.0.1:0", "--admin-listen", "off"]] {
            let result = try fixture.wharf(command)
            #expect(!result.succeeded)
            #expect(result.stderr.contains("migrated by a newer Wharf (migration v99-from-the-future)"), "\(result.stderr)")
            #expect(result.stderr.contains("wharf restore"))
        }
    }
}

/// What `serve` finds wrong with its home before it listens: one line, and no listening.
@Suite struct StartChecksTests {
    static func refusesToServe(_ fixture: WharfHomeFixture) throws -> String {
        let result = try fixture.wharf(["serve", "--listen", "127.0.0.1:0", "--admin-listen", "off"])
        #expect(result.status == 1)
        #expect(!result.stdout.contains("Listening on"))
        #expect(result.stderr.split(separator: "\n").count == 1, "one line: \(result.stderr)")
        return result.stderr
    }

    @Test func aReadOnlySpoolIsFoundAtStart() throws {
        let fixture = try TestGateway.homeWithAcme()
        let spool = "\(fixture.home)/spool"
        let mounted = try Command.run("mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", spool])
        try #require(mounted.succeeded, "mounting a tmpfs needs root: \(mounted.stderr)")
        defer { _ = try? Command.run("umount", [spool]) }
        #expect(try Command.run("mount", ["-o", "remount,ro", spool]).succeeded)
        let said = try Self.refusesToServe(fixture)
        #expect(said.contains("the spool cannot be written"), "\(said)")
        #expect(said.contains("Read-only file system"), "\(said)")
    }

    @Test func aDamagedRegistryIsFoundAtStart() throws {
        let fixture = try TestGateway.homeWithAcme()
        // Garbage over the second page, where the first tables' rows live.
        let handle = try #require(FileHandle(forUpdatingAtPath: "\(fixture.home)/wharf.sqlite"))
        try handle.seek(toOffset: 4_096 + 8)
        try handle.write(contentsOf: Data(repeating: 0xA5, count: 2_000))
        try handle.close()
        let said = try Self.refusesToServe(fixture)
        #expect(said.contains("damaged") || said.contains("malformed"), "\(said)")
    }
}

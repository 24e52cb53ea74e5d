import Foundation
import GRDB
import Synchronization
import Testing
@testable import WharfStore

@Suite struct GroupCommitTests {
    @Test func writesQueuedDuringACommitShareTheNextOneAndKeepTheirOwnOutcome() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("wharf-group-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let pool = try DatabasePool(path: "\(directory)/test.sqlite")
        try pool.write { try $0.execute(sql: "CREATE TABLE item (name TEXT PRIMARY KEY NOT NULL)") }
        let commits = GroupCommit(pool: pool)

        // The first write holds its transaction open until nine more wait behind it.
        let entered = DispatchSemaphore(value: 0)
        let release = DispatchSemaphore(value: 0)
        let outcomes = Mutex<[String: Bool]>([:])
        let writers = DispatchGroup()
        // Threads of their own: each blocks until its commit, as callers on a thread pool do.
        let write = { @Sendable (name: String, hold: Bool) in
            writers.enter()
            Thread {
                defer { writers.leave() }
                var stored = true
                do {
                    try commits.write { (db: Database) -> Void in
                        if hold {
                            entered.signal()
                            release.wait()
                        }
                        try db.execute(sql: "INSERT INTO item (name) VALUES (?)", arguments: [name])
                    }
                } catch {
                    stored = false
                }
                let key = name + (hold ? "" : "-queued")
                outcomes.withLock { (results: inout [String: Bool]) -> Void in results[key] = stored }
            }.start()
        }
        write("first", true)
        entered.wait()
        for index in 0..<8 { write("item-\(index)", false) }
        write("first", false)  // a duplicate: only this write fails
        let deadline = Date().addingTimeInterval(30)
        while commits.counts.waiting < 9 && Date() < deadline { usleep(1000) }
        #expect(commits.counts.waiting == 9)
        release.signal()
        #expect(writers.wait(timeout: .now() + 30) == .success)

        #expect(commits.counts.transactions == 2)
        let stored = try pool.read { try String.fetchAll($0, sql: "SELECT name FROM item ORDER BY name") }
        #expect(stored == ["first"] + (0..<8).map { "item-\($0)" })
        let results = outcomes.withLock { $0 }
        #expect(results["first"] == true && results["first-queued"] == false)
        #expect((0..<8).allSatisfy { results["item-\($0)-queued"] == true })
    }
}

extension GroupCommitTests {
    @Test func aWriteThatNeedNotWaitForAnFsyncLeavesTheConnectionSyncingInFull() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("wharf-group-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var configuration = Configuration()
        configuration.prepareDatabase { db in try db.execute(sql: "PRAGMA synchronous = FULL") }
        let pool = try DatabasePool(path: "\(directory)/test.sqlite", configuration: configuration)
        try pool.write { try $0.execute(sql: "CREATE TABLE item (name TEXT PRIMARY KEY NOT NULL)") }
        let commits = GroupCommit(pool: pool)

        try commits.write(durable: false) { db in try db.execute(sql: "INSERT INTO item (name) VALUES ('claimed')") }
        #expect(try pool.read { try String.fetchAll($0, sql: "SELECT name FROM item") } == ["claimed"])
        // 2 is FULL: the next durable commit syncs as before (and covers this one).
        #expect(try pool.write { try Int.fetchOne($0, sql: "PRAGMA synchronous") } == 2)
        #expect(throws: DatabaseError.self) {
            try commits.write(durable: false) { db in try db.execute(sql: "INSERT INTO item (name) VALUES ('claimed')") }
        }
        #expect(try pool.write { try Int.fetchOne($0, sql: "PRAGMA synchronous") } == 2)
    }
}

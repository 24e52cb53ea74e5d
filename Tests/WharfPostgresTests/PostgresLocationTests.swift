import Foundation
import Testing
import WharfCore
@testable import WharfPostgres

@Suite struct PostgresLocationTests {
    @Test func aURLGivesHostPortUserDatabaseAndTLS() throws {
        let location = try PostgresLocation(url: "postgresql://wharf@db.example.net:6432/gateway?sslmode=require", environment: [:])
        #expect(location.host == "db.example.net")
        #expect(location.port == 6432)
        #expect(location.user == "wharf")
        #expect(location.database == "gateway")
        #expect(location.tls == .require)
        #expect(!location.hasPassword)
        #expect(location.description == "postgresql://wharf@db.example.net:6432/gateway?sslmode=require")
    }

    @Test func withoutSSLModeALoopbackHostIsPlainAndAnyOtherIsVerified() throws {
        #expect(try PostgresLocation(url: "postgresql://u@127.0.0.1/db", environment: [:]).tls == .disable)
        #expect(try PostgresLocation(url: "postgres://u@localhost/db", environment: [:]).tls == .disable)
        let remote = try PostgresLocation(url: "postgresql://u@db.internal/db", environment: [:])
        #expect(remote.tls == .verifyFull)
        #expect(remote.port == 5432)
    }

    @Test func thePasswordComesFromTheURLThenTheFileThenPGPASSWORD() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("wharf-pw-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let file = directory + "/password"
        try "from-file\nignored\n".write(toFile: file, atomically: true, encoding: .utf8)
        let environment = ["PGPASSWORD": "from-env"]
        #expect(try PostgresLocation(url: "postgresql://u:from%40url@h/db", passwordFile: file, environment: environment).password == "from@url")
        #expect(try PostgresLocation(url: "postgresql://u@h/db", passwordFile: file, environment: environment).password == "from-file")
        #expect(try PostgresLocation(url: "postgresql://u@h/db", environment: environment).password == "from-env")
        #expect(try PostgresLocation(url: "postgresql://u@h/db", environment: [:]).password == nil)
    }

    @Test func thePasswordIsNeverShown() throws {
        let url = "postgresql://wharf:s3cret-pw@db.example.net/gateway?sslmode=verify-full"
        let location = try PostgresLocation(url: url, environment: [:])
        #expect(location.hasPassword)
        #expect(!location.description.contains("s3cret-pw"))
        #expect(!"\(location)".contains("s3cret-pw"))
        #expect(PostgresLocation.redacted(url) == "postgresql://wharf:***@db.example.net/gateway?sslmode=verify-full")
        // A URL refused for another reason does not echo its password either.
        let error = try #require(throws: WharfError.self) {
            try PostgresLocation(url: "postgresql://wharf:s3cret-pw@db.example.net/gateway?sslmode=maybe", environment: [:])
        }
        #expect(!error.description.contains("s3cret-pw"))
        let noDatabase = try #require(throws: WharfError.self) {
            try PostgresLocation(url: "postgresql://wharf:s3cret-pw@db.example.net", environment: [:])
        }
        #expect(!noDatabase.description.contains("s3cret-pw"))
        #expect(noDatabase.description.contains("postgresql://wharf:***@db.example.net"))
    }

    @Test(arguments: [
        ("mysql://u@h/db", "is not a postgresql:// URL"),
        ("postgresql://h/db", "names no user"),
        ("postgresql://u@h", "names no database"),
        ("postgresql://u@h/db?sslmode=prefer", "sslmode=\"prefer\" is not one Wharf knows"),
        ("postgresql://u@h/db?application_name=x", "a parameter Wharf does not know"),
    ])
    func aBadURLIsRefusedSayingWhatToWrite(url: String, problem: String) throws {
        let error = try #require(throws: WharfError.self) { try PostgresLocation(url: url, environment: [:]) }
        #expect(error.code == .invalidInput)
        #expect(error.problem.contains(problem), "\(error)")
        #expect(error.fix != nil)
    }

    @Test func anUnreadablePasswordFileIsNamed() throws {
        let error = try #require(throws: WharfError.self) {
            try PostgresLocation(url: "postgresql://u@h/db", passwordFile: "/nonexistent/pw", environment: [:])
        }
        #expect(error.code == .unreadableFile)
        #expect(error.problem.contains("/nonexistent/pw"))
    }
}

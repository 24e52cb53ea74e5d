import Foundation
import Logging
import Testing
import WharfCore
@testable import WharfCommands

@Suite struct LogOutputTests {
    let metadata: Logger.Metadata = [
        "partner": "acme", "file": "a b.xml", "subject": "CN=evil\n2026-01-01T00:00:00Z notice forged", "size": "3",
    ]

    @Test func aTextLineEscapesWhatCameFromOutsideSoItCannotForgeALine() {
        let line = WharfLogHandler.line(at: "2026-12-01T10:00:00.000Z", level: .notice, message: "request refused", metadata: metadata, format: .text)
        #expect(!line.contains("\n"))
        #expect(line == #"2026-12-01T10:00:00.000Z notice request refused file="a b.xml" partner=acme size=3 subject="CN=evil\u{a}2026-01-01T00:00:00Z notice forged""#)
    }

    @Test func aJSONLineIsOneObjectWithTheMetadataAsFields() throws {
        let line = WharfLogHandler.line(at: "2026-12-01T10:00:00.000Z", level: .info, message: "upload \"accepted\"", metadata: metadata, format: .json)
        #expect(!line.contains("\n"))
        let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: String])
        #expect(object["timestamp"] == "2026-12-01T10:00:00.000Z" && object["level"] == "info")
        #expect(object["message"] == "upload \"accepted\"")
        #expect(object["subject"] == "CN=evil\n2026-01-01T00:00:00Z notice forged")
        #expect(object["partner"] == "acme" && object["size"] == "3")
    }

    @Test func timestampsAreRFC3339InUTCWithMilliseconds() {
        let date = Date(timeIntervalSince1970: 1_764_583_200.042)
        #expect(date.utcTimestamp(milliseconds: true) == "2025-12-01T10:00:00.042Z")
    }
}

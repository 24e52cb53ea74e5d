import Foundation
import Testing
import WharfCore

@Suite struct RetryPolicyTests {
    let created = Date(timeIntervalSince1970: 1_800_000_000)
    let policy = RetryPolicy()

    func wait(after attempts: Int, random: Double, retryAfter: Double? = nil) -> Double? {
        let now = created.addingTimeInterval(60)
        guard case .retry(let at) = policy.afterTransientFailure(
            attempts: attempts, createdAt: created, now: now, retryAfter: retryAfter, random: random
        ) else { return nil }
        return at.timeIntervalSince(now)
    }

    @Test func theBoundStartsAt30SecondsDoublesAndStopsAt30Minutes() {
        #expect(wait(after: 1, random: 0.999_999)! < 30 && wait(after: 1, random: 0.999_999)! > 29.9)
        #expect(abs(wait(after: 2, random: 0.5)! - 30) < 0.001)
        #expect(abs(wait(after: 3, random: 0.5)! - 60) < 0.001)
        #expect(abs(wait(after: 12, random: 0.5)! - 900) < 0.001, "capped at 1800 s, half of it")
    }

    @Test func fullJitterMayRetryAtOnce() {
        #expect(wait(after: 5, random: 0) == 0)
    }

    @Test func retryAfterIsAFloor() {
        #expect(wait(after: 1, random: 0.1, retryAfter: 120) == 120)
        #expect(abs(wait(after: 3, random: 0.9, retryAfter: 1)! - 108) < 0.001)
    }

    @Test func attemptsAndAgeRunOut() {
        #expect(policy.afterTransientFailure(attempts: 20, createdAt: created, now: created, retryAfter: nil, random: 0.5)
            == .giveUp("gave up after 20 attempts"))
        let late = created.addingTimeInterval(72 * 3600 - 10)
        #expect(policy.afterTransientFailure(attempts: 3, createdAt: created, now: late, retryAfter: 60, random: 0)
            == .giveUp("gave up: the next attempt would come after the maximum age of 72 h"))
    }

    @Test func aPartnersOverridesReplaceTheGlobalValues() {
        let outbound = OutboundSettings(retryInitialDelay: 1, maxAttempts: 3)
        let merged = outbound.retryPolicy(overriding: RetryPolicy())
        #expect(merged == RetryPolicy(initialDelay: 1, maximumDelay: 1800, maxAttempts: 3, maxAge: 72 * 3600))
    }
}

@Suite struct DeliveryVerdictTests {
    let sha = String(repeating: "a", count: 64)

    @Test(arguments: [
        DeliveryResult(curlCode: 0, httpStatus: 201),
        DeliveryResult(curlCode: 0, httpStatus: 204),
        DeliveryResult(curlCode: 0, httpStatus: 200, body: #"{"sha256":"\#(String(repeating: "a", count: 64))","received_at":"x"}"#),
    ])
    func successes(result: DeliveryResult) {
        #expect(DeliveryVerdict.judge(result, expectedSHA256: sha) == .delivered)
    }

    @Test func aWharfReceiptWithAnotherDigestIsAFailedAttempt() {
        let body = #"{"sha256":"\#(String(repeating: "b", count: 64))","received_at":"x"}"#
        guard case .transient(let reason) = DeliveryVerdict.judge(DeliveryResult(curlCode: 0, httpStatus: 201, body: body), expectedSHA256: sha) else {
            Issue.record("not transient")
            return
        }
        #expect(reason.contains("receipt has SHA-256"))
    }

    @Test(arguments: [(7, nil as Int?), (28, nil), (56, nil), (0, 500), (0, 503), (0, 408), (0, 429)])
    func transientFailures(curlCode: Int, status: Int?) {
        let verdict = DeliveryVerdict.judge(DeliveryResult(curlCode: curlCode, curlError: "x", httpStatus: status), expectedSHA256: sha)
        guard case .transient = verdict else {
            Issue.record("\(curlCode)/\(status ?? 0) judged \(verdict)")
            return
        }
    }

    @Test(arguments: [(90, nil as Int?, nil as String?), (60, nil, nil), (51, nil, nil), (56, nil, "tlsv13 alert certificate required"),
                      (35, nil, "alert unknown ca"), (0, 400, nil), (0, 404, nil), (0, 403, nil)])
    func permanentFailures(curlCode: Int, status: Int?, error: String?) {
        let verdict = DeliveryVerdict.judge(DeliveryResult(curlCode: curlCode, curlError: error, httpStatus: status), expectedSHA256: sha)
        guard case .permanent = verdict else {
            Issue.record("\(curlCode)/\(status ?? 0) judged \(verdict)")
            return
        }
    }
}

import Foundation
import Testing
import WharfCore

@Suite struct LeadershipTests {
    let start = Date(timeIntervalSince1970: 1_800_000_000)

    @Test func aNodeLeadsFromTheLeaseItTookUntilItsMarginBeforeExpiry() {
        var leadership = Leadership(duration: 15, margin: 5)
        #expect(!leadership.leads(at: start))
        leadership.attempted(at: start, held: true)
        #expect(leadership.leads(at: start.addingTimeInterval(9.9)))
        #expect(!leadership.leads(at: start.addingTimeInterval(10)), "it stops 5 s before the lease runs out")
    }

    @Test func aLeaderRenewsWellBeforeItWouldStopAndAFollowerTriesEveryMargin() {
        var leadership = Leadership(duration: 15, margin: 5)
        #expect(leadership.nextTry(after: start) == start.addingTimeInterval(5))
        leadership.attempted(at: start, held: true)
        let next = leadership.nextTry(after: start)
        #expect(next > start && next < start.addingTimeInterval(10))
        // Renewed in time, it leads on without a gap.
        leadership.attempted(at: next, held: true)
        #expect(leadership.leads(at: start.addingTimeInterval(10)))
    }

    @Test func aLeaderThatCannotReachTheRegistryStopsAtItsMarginAndOneThatLostTheLeaseAtOnce() {
        var leadership = Leadership(duration: 15, margin: 5)
        leadership.attempted(at: start, held: true)
        leadership.attemptFailed()
        #expect(leadership.leads(at: start.addingTimeInterval(9)))
        #expect(!leadership.leads(at: start.addingTimeInterval(10)))
        leadership.attempted(at: start.addingTimeInterval(4), held: false)
        #expect(!leadership.leads(at: start.addingTimeInterval(4)), "another node holds it: stop now")
    }

    @Test func aSlowAnswerDoesNotStretchTheLease() {
        var leadership = Leadership(duration: 15, margin: 5)
        // The attempt started at `start` and was answered 8 s later: the registry's lease
        // runs from when it was written, no later than the answer, so count from the start.
        leadership.attempted(at: start, held: true)
        #expect(!leadership.leads(at: start.addingTimeInterval(10)))
        leadership.steppedDown()
        #expect(!leadership.leads(at: start))
    }
}

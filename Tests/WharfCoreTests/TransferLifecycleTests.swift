import Testing
import WharfCore

@Suite struct TransferLifecycleTests {
    typealias State = Transfer.State

    /// The life cycle as the README tells it, written out pair by pair: every pair not
    /// listed here must be refused.
    static let allowed: Set<[State]> = [
        [.queued, .sending], [.retrying, .sending],
        [.sending, .delivered], [.sending, .retrying], [.sending, .dead],
        [.dead, .queued], [.retrying, .queued], [.queued, .queued],
        [.queued, .cancelled], [.retrying, .cancelled], [.dead, .cancelled],
        // A pull partner's transfers: fetched and acknowledged, or not in time.
        [.queued, .delivered], [.retrying, .delivered], [.queued, .dead], [.retrying, .dead],
    ]

    static let pairs: [(State, State)] = State.allCases.flatMap { from in State.allCases.map { (from, $0) } }

    @Test(arguments: pairs)
    func aChangeOfStateIsAllowedExactlyWhenTheLifeCycleHasIt(from: State, to: State) {
        #expect(from.canChange(to: to) == Self.allowed.contains([from, to]), "\(from) → \(to)")
    }

    @Test(arguments: Transfer.Transition.allCases)
    func eachTransitionLeadsToItsTargetFromItsSourcesAndIsRefusedFromEveryOtherState(_ transition: Transfer.Transition) throws {
        for state in State.allCases {
            let result = Result { () throws(WharfError) in try transition.apply(to: state, transfer: "t1") }
            if transition.sources.contains(state) {
                #expect(try result.get() == transition.target)
            } else {
                #expect(throws: WharfError.self) { try result.get() }
                if case .failure(let error) = result {
                    #expect(error.code == .transitionRefused)
                    #expect(error.problem.contains("t1 is \(state.rawValue)"), "\(error)")
                }
            }
        }
    }

    @Test func finishedTransfersCannotBeCancelledAndOneBeingSentIsToldToWait() throws {
        for state in [State.delivered, .cancelled] {
            #expect(throws: WharfError.self) { try Transfer.Transition.cancel.apply(to: state, transfer: "t1") }
        }
        let refusal = Transfer.Transition.cancel.refusal(transfer: "t1", state: .sending)
        #expect(refusal.fix == "wait for the attempt to end, then cancel")
    }

    @Test func theSQLGuardNamesExactlyTheSources() {
        #expect(Transfer.Transition.claim.sqlSources == "'queued', 'retrying'")
        #expect(Transfer.Transition.cancel.sqlSources == "'queued', 'retrying', 'dead'")
    }
}

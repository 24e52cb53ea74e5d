/// The life of a transfer, defined once: every store applies each change of state through
/// `Transfer.Transition`, guarded by its `sources` (`WHERE state IN (…)`), and a change
/// that is not allowed is a `WharfError` with code `transition_refused`, never a no-op.
///
/// ```
/// queued ──claim──▶ sending ──deliver──▶ delivered
///    ▲                 │ ├──scheduleRetry / release / recover──▶ retrying ──claim──▶ sending
///    │                 │ └──giveUp / kill──▶ dead
///    └────retry──── dead, retrying, queued
/// queued, retrying, dead ──cancel──▶ cancelled
/// queued, retrying ──acknowledge──▶ delivered   (a pull partner fetched it)
/// queued, retrying ──expire──▶ dead             (a pull partner did not, in time)
/// ```
extension Transfer {
    public enum Transition: String, Sendable, CaseIterable {
        /// The worker takes a due transfer for an attempt.
        case claim
        /// An attempt succeeded.
        case deliver
        /// An attempt failed in a way worth trying again later.
        case scheduleRetry = "schedule_retry"
        /// An attempt failed for good, or retries are exhausted.
        case giveUp = "give_up"
        /// A claimed transfer cannot be attempted at all (its partner or file is gone).
        case kill
        /// An attempt could not even be recorded: back to the queue, no attempt on record.
        case release
        /// The process stopped during an attempt: due again at the next start.
        case recover
        /// The operator puts a transfer back in the queue (`wharf transfers retry`).
        case retry
        /// The operator drops a transfer that is not being sent (`wharf transfers cancel`).
        case cancel
        /// A pull partner fetched the file and acknowledged it (`DELETE /outbox/{id}`).
        case acknowledge
        /// A pull partner did not fetch the file within its maximum age.
        case expire

        /// The states this transition may start from.
        public var sources: [State] {
            switch self {
            case .claim: [.queued, .retrying]
            case .deliver, .scheduleRetry, .giveUp, .kill, .release, .recover: [.sending]
            case .retry: [.dead, .retrying, .queued]
            case .cancel: [.queued, .retrying, .dead]
            case .acknowledge, .expire: [.queued, .retrying]
            }
        }

        /// The state it leads to.
        public var target: State {
            switch self {
            case .claim: .sending
            case .deliver, .acknowledge: .delivered
            case .scheduleRetry, .release, .recover: .retrying
            case .giveUp, .kill, .expire: .dead
            case .retry: .queued
            case .cancel: .cancelled
            }
        }

        /// The `sources` as an SQL list, `'queued', 'retrying'`: the guard every store
        /// puts on the update that applies the transition.
        public var sqlSources: String {
            sources.map { "'\($0.rawValue)'" }.joined(separator: ", ")
        }

        /// The state `transition` leads to from `state`, or the error that refuses it.
        public func apply(to state: State, transfer id: String) throws(WharfError) -> State {
            guard sources.contains(state) else { throw refusal(transfer: id, state: state) }
            return target
        }

        /// The error for a transfer in `state` that this transition cannot start from.
        public func refusal(transfer id: String, state: State) -> WharfError {
            let fix: String = switch (self, state) {
            case (.cancel, .sending): "wait for the attempt to end, then cancel"
            case (.cancel, _), (.retry, .delivered), (.retry, .cancelled): "it is already finished"
            case (.retry, .sending): "it is being sent now"
            default: "`wharf transfers show \(id)` says where it is"
            }
            return WharfError(
                .transitionRefused, "transfer \(id) is \(state.rawValue) and cannot \(verb)", fix: fix
            )
        }

        private var verb: String {
            switch self {
            case .claim: "be claimed"
            case .deliver: "be recorded delivered"
            case .scheduleRetry: "be scheduled for a retry"
            case .giveUp, .kill: "be marked dead"
            case .release: "be released"
            case .recover: "be recovered"
            case .retry: "be retried"
            case .cancel: "be cancelled"
            case .acknowledge: "be acknowledged"
            case .expire: "expire"
            }
        }
    }
}

extension Transfer.State {
    /// Whether some transition leads from `self` to `next`.
    public func canChange(to next: Transfer.State) -> Bool {
        Transfer.Transition.allCases.contains { $0.sources.contains(self) && $0.target == next }
    }
}

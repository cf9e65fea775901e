package tileattn.search;

/** Chooses a window per searched step, layer and head from measured errors. */
public sealed interface SelectionRule permits BudgetRule, LowestErrorRule {

    Selection select(ErrorTable table, StepPlan plan);

    /** The rule and its parameters in a few words, for the report. */
    String describe();
}

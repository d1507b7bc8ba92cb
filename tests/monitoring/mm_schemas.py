"""AWS SageMaker Model Monitor's documented file formats, as JSON Schemas.

Transcribed from the Developer Guide pages "Schema for Statistics (statistics.json file)",
"Schema for Constraints (constraints.json file)", "Schema for Violations (constraint_violations.json
file)" and "Model quality metrics and Amazon CloudWatch monitoring": field names, types and nesting.
``additionalProperties`` is false wherever the documentation lists every field, so a misspelt or
invented field fails.
"""

NUMBER = {"type": "number"}
METRIC = {"type": "object", "required": ["value", "standard_deviation"], "additionalProperties": False,
          "properties": {"value": {"type": ["number", "string"]}, "standard_deviation": {"type": ["number", "string"]}}}
COMMON = {"type": "object", "required": ["num_present", "num_missing"], "additionalProperties": False,
          "properties": {"num_present": NUMBER, "num_missing": NUMBER}}
KLL = {
    "type": "object", "required": ["buckets", "sketch"], "additionalProperties": False,
    "properties": {
        "buckets": {"type": "array", "items": {
            "type": "object", "required": ["lower_bound", "upper_bound", "count"], "additionalProperties": False,
            "properties": {"lower_bound": NUMBER, "upper_bound": NUMBER, "count": NUMBER}}},
        "sketch": {"type": "object", "required": ["parameters", "data"], "additionalProperties": False, "properties": {
            "parameters": {"type": "object", "required": ["c", "k"], "additionalProperties": False,
                           "properties": {"c": NUMBER, "k": NUMBER}},
            "data": {"type": "array", "items": {"type": "array", "items": NUMBER}}}},
    },
}
NUMERICAL = {
    "type": "object", "required": ["common", "mean", "sum", "std_dev", "min", "max", "distribution"], "additionalProperties": False,
    "properties": {"common": COMMON, "mean": NUMBER, "sum": NUMBER, "std_dev": NUMBER, "min": NUMBER, "max": NUMBER,
                   "distribution": {"type": "object", "required": ["kll"], "additionalProperties": False, "properties": {"kll": KLL}}},
}
STRING = {
    "type": "object", "required": ["common", "distinct_count", "distribution"], "additionalProperties": False,
    "properties": {
        "common": COMMON, "distinct_count": NUMBER,
        "distribution": {"type": "object", "required": ["categorical"], "additionalProperties": False, "properties": {
            "categorical": {"type": "object", "required": ["buckets"], "additionalProperties": False, "properties": {
                "buckets": {"type": "array", "items": {"type": "object", "required": ["value", "count"], "additionalProperties": False,
                                                      "properties": {"value": {"type": "string"}, "count": NUMBER}}}}}}},
    },
}
STATISTICS = {
    "type": "object", "required": ["version", "dataset", "features"],
    "properties": {
        "version": NUMBER,
        "dataset": {"type": "object", "required": ["item_count"], "properties": {"item_count": NUMBER}},
        "features": {"type": "array", "items": {
            "type": "object", "required": ["name", "inferred_type"],
            "properties": {"name": {"type": "string"}, "inferred_type": {"enum": ["Integral", "Fractional", "String", "Unknown"]},
                           "numerical_statistics": NUMERICAL, "string_statistics": STRING},
            "oneOf": [{"required": ["numerical_statistics"]}, {"required": ["string_statistics"]},
                      {"properties": {"inferred_type": {"const": "Unknown"}}}],
        }},
    },
}
CONSTRAINTS = {
    "type": "object", "required": ["version", "features", "monitoring_config"], "additionalProperties": False,
    "properties": {
        "version": NUMBER,
        "features": {"type": "array", "items": {
            "type": "object", "required": ["name", "inferred_type", "completeness"], "additionalProperties": False,
            "properties": {
                "name": {"type": "string"},
                "inferred_type": {"enum": ["Integral", "Fractional", "String", "Unknown"]},
                "completeness": {"type": "number", "minimum": 0, "maximum": 1},
                "num_constraints": {"type": "object", "required": ["is_non_negative"], "additionalProperties": False,
                                    "properties": {"is_non_negative": {"type": "boolean"}}},
                "string_constraints": {"type": "object", "required": ["domains"], "additionalProperties": False,
                                       "properties": {"domains": {"type": "array", "items": {"type": "string"}}}},
                "monitoringConfigOverrides": {"type": "object"},
            },
        }},
        "monitoring_config": {
            "type": "object", "additionalProperties": False,
            "required": ["evaluate_constraints", "emit_metrics", "datatype_check_threshold", "domain_content_threshold",
                         "distribution_constraints"],
            "properties": {
                "evaluate_constraints": {"enum": ["Enabled", "Disabled"]},
                "emit_metrics": {"enum": ["Enabled", "Disabled"]},
                "datatype_check_threshold": NUMBER,
                "domain_content_threshold": NUMBER,
                "distribution_constraints": {
                    "type": "object", "required": ["perform_comparison", "comparison_threshold", "comparison_method"],
                    "additionalProperties": False,
                    "properties": {
                        "perform_comparison": {"enum": ["Enabled", "Disabled"]},
                        "comparison_threshold": NUMBER,
                        "comparison_method": {"enum": ["Simple", "Robust"]},
                        "categorical_comparison_threshold": NUMBER,
                        "categorical_drift_method": {"enum": ["LInfinity", "ChiSquared"]},
                    },
                },
            },
        },
    },
}
VIOLATIONS = {
    "type": "object", "required": ["violations"], "additionalProperties": False,
    "properties": {"violations": {"type": "array", "items": {
        "type": "object", "required": ["feature_name", "constraint_check_type", "description"], "additionalProperties": False,
        "properties": {
            "feature_name": {"type": "string"},
            "constraint_check_type": {"enum": ["data_type_check", "completeness_check", "baseline_drift_check",
                                               "missing_column_check", "extra_column_check", "categorical_values_check"]},
            "description": {"type": "string"},
        },
    }}},
}
CONFUSION = {"type": "object", "additionalProperties": {"type": "object", "additionalProperties": {"type": "integer"}}}
MODEL_STATISTICS = {
    "type": "object", "required": ["version", "dataset"], "additionalProperties": False,
    "properties": {
        "version": NUMBER,
        "dataset": {"type": "object", "required": ["item_count"], "properties": {"item_count": NUMBER, "evaluation_time": {"type": "string"}}},
        "regression_metrics": {"type": "object", "required": ["mae", "mse", "rmse", "r2"], "additionalProperties": False,
                               "properties": {k: METRIC for k in ("mae", "mse", "rmse", "r2")}},
        "binary_classification_metrics": {
            "type": "object", "required": ["confusion_matrix", "recall", "precision", "accuracy", "f1"],
            "properties": {"confusion_matrix": CONFUSION}, "additionalProperties": METRIC},
        "multiclass_classification_metrics": {
            "type": "object", "required": ["confusion_matrix", "accuracy", "weighted_recall", "weighted_precision", "weighted_f1"],
            "properties": {"confusion_matrix": CONFUSION}, "additionalProperties": METRIC},
    },
    "oneOf": [{"required": ["regression_metrics"]}, {"required": ["binary_classification_metrics"]},
              {"required": ["multiclass_classification_metrics"]}],
}
OPERATORS = ["GreaterThanThreshold", "GreaterThanOrEqualToThreshold", "LessThanThreshold", "LessThanOrEqualToThreshold"]
RULE = {"type": "object", "required": ["threshold", "comparison_operator"], "additionalProperties": False,
        "properties": {"threshold": NUMBER, "comparison_operator": {"enum": OPERATORS}}}
# The metrics each problem type reports (Developer Guide, "Model quality metrics and Amazon
# CloudWatch monitoring"): a constraint can only name one of them.
_F = ("f0_5", "f1", "f2")
DOCUMENTED_METRICS = {
    "regression_constraints": ["mae", "mse", "rmse", "r2"],
    "binary_classification_constraints": [
        "recall", "precision", "accuracy", "true_positive_rate", "true_negative_rate", "false_positive_rate",
        "false_negative_rate", "auc", *_F,
        *(f"{m}_best_constant_classifier" for m in ("recall", "precision", "accuracy", *_F))],
    "multiclass_classification_constraints": [
        "accuracy", *(f"weighted_{m}" for m in ("recall", "precision", *_F)),
        *(f"{m}_best_constant_classifier" for m in ("accuracy", *(f"weighted_{x}" for x in ("recall", "precision", *_F))))],
}
MODEL_CONSTRAINTS = {
    "type": "object", "required": ["version"], "additionalProperties": False,
    "properties": {"version": NUMBER, **{k: {"type": "object", "minProperties": 1, "additionalProperties": False,
                                             "properties": {m: RULE for m in metrics}}
                                         for k, metrics in DOCUMENTED_METRICS.items()}},
    # one problem type per file
    "oneOf": [{"required": [k]} for k in DOCUMENTED_METRICS],
}
MODEL_VIOLATIONS = {
    "type": "object", "required": ["violations"],
    "properties": {"violations": {"type": "array", "items": {
        "type": "object", "required": ["metric_name", "constraint_check_type", "description"],
        "properties": {"metric_name": {"type": "string"}, "constraint_check_type": {"enum": OPERATORS},
                       "description": {"type": "string"}}}}},
}

//! AWS adapters: SQS, DynamoDB, Secrets Manager.

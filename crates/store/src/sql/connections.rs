//! Where a backend's reads and writes go.

use crate::StoreError;
use crate::tx::Tx;

for_each_backend! {
    impl Db {
        /// Where reads go.
        pub(crate) fn reader(&self) -> &sqlx::Pool<Database> {
            &self.pool
        }

        /// Starts a write transaction (see [`crate::tx`]).
        pub(crate) async fn tx(&self) -> Result<Tx<Database>, sqlx::Error> {
            Tx::begin(&self.writer, Db::BEGIN).await
        }

        pub(crate) async fn run_migrations(&self) -> Result<(), StoreError> {
            Db::MIGRATOR.run(&self.writer).await?;
            Ok(())
        }
    }
}

"""Language resources shared by the stages that read text (cache guard, answerability, verification)."""

"""daytonaflow.runner"""
